package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/pkg/api"
)

var now = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

func testBundles() []api.ResourceBundle {
	confirmed := now.Add(-2 * time.Second)
	return []api.ResourceBundle{
		{ID: "11111111-aaaa", Name: "shared-ingress", ConsumerName: "mgmt-1", Version: 3, CreatedAt: now.Add(-90 * time.Minute),
			Status: &api.BundleStatus{Revision: 7,
				Conditions:     []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue}, {Type: api.ConditionAvailable, Status: metav1.ConditionTrue}},
				ResourceStatus: []api.ResourceStatus{{}},
				Freshness:      &api.Freshness{State: api.FreshnessFresh, ConfirmedAt: &confirmed, AgeSeconds: 2.04}}},
		{ID: "22222222-bbbb", Name: "hello", ConsumerName: "mgmt-2", Version: 1, CreatedAt: now.Add(-3 * 24 * time.Hour),
			Status: &api.BundleStatus{Revision: 2,
				Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue}, {Type: api.ConditionAvailable, Status: metav1.ConditionFalse}},
				Freshness:  &api.Freshness{State: api.FreshnessStale, Reason: api.ReasonAgentDisconnected, AgeSeconds: 600}}},
		{ID: "33333333-cccc", Name: "33333333-cccc", Metadata: api.ObjectMeta{Name: "maestro-work"}, ConsumerName: "mgmt-3", Version: 2, CreatedAt: now.Add(-30 * time.Second)},
	}
}

func render(t *testing.T, format string, f func(p *printer) error) string {
	t.Helper()
	var buf bytes.Buffer
	p := &printer{w: &buf, format: format, now: now}
	if err := f(p); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestBundleTable(t *testing.T) {
	got := render(t, outTable, func(p *printer) error { return p.bundles(testBundles(), true) })
	want := `NAME             CONSUMER   VERSION   APPLIED   AVAILABLE   FRESHNESS                  AGE
shared-ingress   mgmt-1     3         True      True        Fresh                      90m
hello            mgmt-2     1         True      False       Stale(AgentDisconnected)   3d
maestro-work     mgmt-3     2         -         -           -                          30s
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBundleTableWide(t *testing.T) {
	got := render(t, outWide, func(p *printer) error { return p.bundles(testBundles()[:2], true) })
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q", got)
	}
	for _, want := range []string{"ID", "REVISION", "OBJECTS", "DATA AGE"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	if f := strings.Fields(lines[1]); f[len(f)-4] != "11111111-aaaa" || f[len(f)-3] != "7" || f[len(f)-2] != "1" || f[len(f)-1] != "2.0s" {
		t.Errorf("row %q", lines[1])
	}
	if !strings.HasSuffix(lines[2], "10m") {
		t.Errorf("data age of row %q; want 10m", lines[2])
	}
}

func TestBundleJSONAndYAML(t *testing.T) {
	one := testBundles()[:1]
	got := render(t, outJSON, func(p *printer) error { return p.bundles(one, false) })
	var b api.ResourceBundle
	if err := json.Unmarshal([]byte(got), &b); err != nil || b.Name != "shared-ingress" || b.Status.Freshness.State != "Fresh" {
		t.Fatalf("single json: %v %+v", err, b)
	}
	got = render(t, outYAML, func(p *printer) error { return p.bundles(testBundles(), true) })
	var l api.List[api.ResourceBundle]
	if err := yaml.Unmarshal([]byte(got), &l); err != nil || l.Kind != api.KindResourceBundleList || len(l.Items) != 3 || l.Total != 3 {
		t.Fatalf("list yaml: %v %+v", err, l)
	}
	if !strings.Contains(got, "consumer_name: mgmt-1") {
		t.Errorf("yaml does not use the API field names:\n%s", got)
	}
}

func TestNames(t *testing.T) {
	got := render(t, outName, func(p *printer) error { return p.bundles(testBundles(), true) })
	if got != "bundle/shared-ingress\nbundle/hello\nbundle/maestro-work\n" {
		t.Errorf("got %q", got)
	}
	got = render(t, outName, func(p *printer) error { return p.consumers([]api.Consumer{{Name: "a"}}, true) })
	if got != "consumer/a\n" {
		t.Errorf("got %q", got)
	}
}

func TestConsumerTable(t *testing.T) {
	hb := now.Add(-5 * time.Second)
	cs := []api.Consumer{
		{ID: "c1", Name: "mgmt-1", CreatedAt: now.Add(-48 * time.Hour), Labels: map[string]string{"region": "eastus", "env": "prod"},
			Agent: &api.AgentState{Connected: true, Epoch: "e7", LastHeartbeat: &hb}},
		{ID: "c2", Name: "mgmt-2", CreatedAt: now.Add(-time.Hour)},
	}
	got := render(t, outWide, func(p *printer) error { return p.consumers(cs, true) })
	want := `NAME     AGENT       LAST HEARTBEAT   AGE   ID   EPOCH   LABELS
mgmt-1   Connected   5s ago           2d    c1   e7      env=prod,region=eastus
mgmt-2   -           -                60m   c2   -       <none>
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestColourOnlyWhenAsked(t *testing.T) {
	var buf bytes.Buffer
	p := newPrinter(&buf, "")
	if p.color {
		t.Fatal("colour on for a buffer")
	}
	p.color = true
	if got := p.paint("False"); got != ansiRed+"False"+ansiReset {
		t.Errorf("paint False = %q", got)
	}
	tb := &table{w: &buf}
	tb.row(p.paint("True") + "\tx")
	tb.row("Unknown\ty")
	_ = tb.Flush()
	lines := strings.Split(buf.String(), "\n")
	if strings.Index(lines[0], "x")-len(ansiGreen)-len(ansiReset) != strings.Index(lines[1], "y") {
		t.Errorf("colour codes break alignment: %q", buf.String())
	}
}

func TestSelectorSearch(t *testing.T) {
	got, err := selectorSearch("region=eastus, env!=dev,tier==gold")
	if err != nil || got != "labels.region='eastus' and labels.env!='dev' and labels.tier='gold'" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"region", "=x", "a b=c"} {
		if _, err := selectorSearch(bad); err == nil {
			t.Errorf("selector %q accepted", bad)
		}
	}
}

func TestResolveServer(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	t.Setenv(EnvConfig, cfgFile)
	t.Setenv(EnvServer, "")
	check := func(flag, want string) {
		t.Helper()
		got, err := resolveServer(flag)
		if err != nil || got != want {
			t.Errorf("resolveServer(%q) = %q, %v; want %q", flag, got, err, want)
		}
	}
	check("", DefaultServer)
	if err := os.WriteFile(cfgFile, []byte("server: http://from-config:8000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("", "http://from-config:8000")
	t.Setenv(EnvServer, "http://from-env:8000")
	check("", "http://from-env:8000")
	check("http://from-flag:8000", "http://from-flag:8000")
	t.Setenv(EnvServer, "")
	if err := os.WriteFile(cfgFile, []byte("sever: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveServer(""); err == nil || !strings.Contains(err.Error(), "config.yaml") {
		t.Errorf("bad config: got %v", err)
	}
}

func TestEveryVerbHasExamples(t *testing.T) {
	root := NewRoot()
	for _, name := range []string{"get", "describe", "apply", "delete", "resync", "watch", "doctor"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("verb %s missing: %v", name, err)
		}
		if strings.TrimSpace(cmd.Example) == "" || cmd.Flags().Lookup("server") == nil {
			t.Errorf("verb %s: no examples or no --server", name)
		}
	}
}

func TestWatchRowsLineUpWithTheTable(t *testing.T) {
	bs := testBundles()
	got := render(t, outTable, func(p *printer) error {
		if err := p.bundles(bs[:2], true); err != nil {
			return err
		}
		return p.bundles(bs[2:], false)
	})
	lines := strings.Split(got, "\n")
	if strings.Index(lines[0], "CONSUMER") != strings.Index(lines[3], "mgmt-3") ||
		strings.Index(lines[0], "AGE") != strings.Index(lines[3], "30s") {
		t.Errorf("event row not under the header:\n%s", got)
	}
}
