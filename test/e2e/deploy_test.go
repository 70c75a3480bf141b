package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/cli"
	"github.com/baton-dev/baton/internal/testenv"
)

// deployDir is the repository's deploy/ directory.
var deployDir = filepath.Join("..", "..", "deploy")

// kustomizations returns every kustomization under deploy/kustomize that
// renders on its own (components are rendered through the overlays).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(filepath.Join(deployDir, "kustomize"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("\nkind: Kustomization")) {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil || len(dirs) < 4 {
		t.Fatalf("kustomizations under deploy/kustomize: %v %v", dirs, err)
	}
	return dirs
}

func kubectl(t *testing.T) string {
	t.Helper()
	dir, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(k); err != nil {
		t.Skipf("no kubectl in %s (build the assets with WITH_KUBECTL=1)", dir)
	}
	return k
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// documents splits a rendered multi-document YAML stream into objects.
func documents(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		objs = append(objs, o)
	}
	return objs
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkBatonArgs parses the arguments of every baton container with the
// baton command line itself: a flag that does not exist, a bad value or a
// wrong subcommand fails here, not in a crash-looping pod.
func checkBatonArgs(t *testing.T, dir string, objs []map[string]any) int {
	t.Helper()
	n := 0
	for _, o := range objs {
		spec, ok := nested(o, "spec", "template", "spec").(map[string]any)
		if !ok {
			continue
		}
		for _, key := range []string{"initContainers", "containers"} {
			cs, _ := spec[key].([]any)
			for _, c := range cs {
				c := c.(map[string]any)
				if img, _ := c["image"].(string); !strings.Contains(img, "baton") {
					continue
				}
				var args []string
				for _, a := range c["args"].([]any) {
					// $(VAR) is expanded by the kubelet; any value parses.
					args = append(args, envRef.ReplaceAllString(a.(string), "x"))
				}
				what := fmt.Sprintf("%s: %s container %s", dir, o["kind"], c["name"])
				root := cli.NewRoot()
				cmd, rest, err := root.Find(args)
				if err != nil || cmd == root || cmd.Name() != args[0] {
					t.Errorf("%s: args %q: no baton subcommand %q (%v)", what, args, args[0], err)
					continue
				}
				if err := cmd.ParseFlags(rest); err != nil {
					t.Errorf("%s: baton %s: %v", what, args[0], err)
				}
				if extra := cmd.Flags().Args(); len(extra) > 0 {
					t.Errorf("%s: baton %s: stray arguments %q", what, args[0], extra)
				}
				n++
			}
		}
	}
	return n
}

func nested(o map[string]any, path ...string) any {
	var v any = o
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// ensureNamespaces creates the namespaces the manifests put objects in: a
// server-side dry run does not create the Namespace objects it validates.
func ensureNamespaces(t *testing.T, kc kubernetes.Interface, objs []map[string]any) {
	t.Helper()
	for _, o := range objs {
		if o["kind"] != "Namespace" {
			continue
		}
		name := nested(o, "metadata", "name").(string)
		_, err := kc.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// Every kustomization in deploy/ renders, its baton arguments parse, and
// the real kube-apiserver accepts all of it in a server-side dry run.
func TestDeployManifestsDryRun(t *testing.T) {
	k := kubectl(t)
	kc, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		t.Fatal(err)
	}
	containers := 0
	for _, dir := range kustomizations(t) {
		rel, _ := filepath.Rel(deployDir, dir)
		t.Run(rel, func(t *testing.T) {
			out := run(t, nil, k, "kustomize", dir)
			objs := documents(t, out)
			containers += checkBatonArgs(t, rel, objs)
			ensureNamespaces(t, kc, objs)
			run(t, out, k, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", "-")
		})
	}
	if containers < 8 {
		t.Errorf("checked the arguments of %d baton containers; the manifests have more", containers)
	}
}

// The agent runs against the real kube-apiserver with nothing but the RBAC
// of deploy/kustomize/overlays/agent-namespaced (its service account's
// token, no other rights) and delivers a bundle into its namespace.
func TestDeployAgentRBACIsEnough(t *testing.T) {
	k := kubectl(t)
	out := run(t, nil, k, "kustomize", filepath.Join(deployDir, "kustomize", "overlays", "agent-namespaced"))
	run(t, out, k, "--kubeconfig", kubeconfig, "apply", "-f", "-")
	c := newCluster(t, sqliteStore)
	const agentNS, workNS = "baton-agent", "baton-workloads"
	tr, err := c.kube.CoreV1().ServiceAccounts(agentNS).CreateToken(context.Background(), "baton-agent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["test"] = &clientcmdapi.Cluster{Server: kubeCfg.Host, CertificateAuthorityData: kubeCfg.CAData}
	kcfg.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kcfg.Contexts["agent"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "agent"}
	kcfg.CurrentContext = "agent"
	path := filepath.Join(t.TempDir(), "agent.kubeconfig")
	if err := clientcmd.WriteToFile(*kcfg, path); err != nil {
		t.Fatal(err)
	}

	consumer := "rbac-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:20]
	c.createConsumer(consumer)
	metrics := freePort(t)
	startProc(t, "agent-rbac", nil, "agent", "--consumer", consumer, "--server", c.agentRPC, "--kubeconfig", path,
		"--records-namespace", agentNS, "--metrics-addr", metrics, "--heartbeat", "1s")
	c.waitReady("http://" + metrics + "/readyz")

	name := "rbac-" + strings.ToLower(time.Now().Format("150405.000000"))
	name = strings.ReplaceAll(name, ".", "-")
	b := c.createBundle(configMapBundle(consumer, name, workNS, name, "hello", "ServerSideApply"))
	eventually(t, 60*time.Second, "the bundle applied with the agent's own RBAC", func() bool {
		got, code, err := c.getBundle(b.ID)
		v, ok := feedback(got, "v")
		return err == nil && code == http.StatusOK && ok && v == "hello"
	})
	cm, err := c.kube.CoreV1().ConfigMaps(workNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || cm.Data["v"] != "hello" {
		t.Fatalf("ConfigMap %s/%s: %v %v", workNS, name, cm.Data, err)
	}
	secrets, err := c.kube.CoreV1().Secrets(agentNS).List(context.Background(), metav1.ListOptions{LabelSelector: "baton.dev/record=bundle"})
	if err != nil || !slices.ContainsFunc(secrets.Items, func(s corev1.Secret) bool { return s.Labels["baton.dev/agent"] == consumer }) {
		t.Fatalf("no bundle record of %s in %s: %v", consumer, agentNS, err)
	}
}

// Every metric the alert rules use is served by a running server or agent.
func TestDeployAlertRulesUseServedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "baton-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("baton-rules.yaml: %v", err)
	}
	c := newCluster(t, sqliteStore)
	c.createConsumer("alerts")
	metrics := freePort(t)
	startProc(t, "agent-alerts", nil, "agent", "--consumer", "alerts", "--server", c.agentRPC, "--kubeconfig", kubeconfig,
		"--records-namespace", c.records, "--metrics-addr", metrics)
	c.waitReady("http://" + metrics + "/readyz")
	served := scrape(t, c.rest+"/metrics") + scrape(t, "http://"+metrics+"/metrics")
	name := regexp.MustCompile(`\bbaton_[a-z0-9_]+`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: needs alert, expr and a summary", r.Alert)
			}
			for _, m := range name.FindAllString(r.Expr, -1) {
				n++
				if !regexp.MustCompile(`(?m)^` + m + `(_bucket|_sum|_count)?[{ ]`).MatchString(served) {
					t.Errorf("alert %s uses %s, which neither the server nor the agent serves", r.Alert, m)
				}
			}
		}
	}
	if n < 6 {
		t.Errorf("only %d baton metrics in the rules", n)
	}
}

// scrape returns the Prometheus text at url.
func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
