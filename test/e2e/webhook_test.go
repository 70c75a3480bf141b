package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

const hookSecret = "e2e-webhook-secret-0123456789"

// TestDNSUpdaterFollowsTheSeedScenario runs the runbook's incident through
// examples/dns-updater: the shared-ingress Service is deleted and recreated
// with a new IP, and the zone file follows within a second, with no human
// step (the runbook's Step 4).
func TestDNSUpdaterFollowsTheSeedScenario(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dns-updater")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/baton-dev/baton/examples/dns-updater").CombinedOutput(); err != nil {
		t.Fatalf("building examples/dns-updater: %v\n%s", err, out)
	}
	c := newCluster(t, sqliteStore)
	c.createConsumer("mgmt-1")
	c.startAgent("mgmt-1")
	ns := c.namespace("sharedingress")
	const oldIP, newIP = "20.1.2.3", "20.9.8.7"
	c.createLBService(ns, "router", oldIP)

	addr, record := freePort(t), filepath.Join(t.TempDir(), "router.zone")
	startProcBin(t, bin, "dns-updater", []string{"BATON_WEBHOOK_SECRET=" + hookSecret},
		"-listen", addr, "-record", record, "-name", "router.example.com.")
	c.mustDo("POST", "/subscriptions", map[string]any{"name": "dns", "url": "http://" + addr + "/hook",
		"secret": hookSecret, "events": []string{"feedback", "deleted"}, "search": "name = 'shared-ingress'"}, nil)
	c.createBundle(seedBundle("mgmt-1", ns))
	readRecord := func() string { b, _ := os.ReadFile(record); return string(b) }
	eventually(t, 10*time.Second, "record with the old IP", func() bool { return strings.Contains(readRecord(), oldIP) })

	ctx := context.Background()
	if err := c.kube.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := eventually(t, 5*time.Second, "record removed with the Service", func() bool { return readRecord() == "" })
	svc := c.createLBService(ns, "router", "")
	c.setLBIP(svc, newIP)
	back := eventually(t, 5*time.Second, "record with the new IP", func() bool {
		return readRecord() == "router.example.com. 60 IN A "+newIP+"\n"
	})
	t.Logf("Service deleted → record removed in %v; new IP set → record updated in %v", gone, back)
	if back > time.Second {
		t.Errorf("the record followed the new IP after %v, want < 1s", back)
	}
}

// TestWebhookResumesAfterServerKill kills the server with SIGKILL while a
// slow receiver still has a backlog, restarts it on the same database, and
// checks delivery resumes: every value arrives in order (redeliveries are
// allowed, recognised by sequence) and the last one is the current value.
func TestWebhookResumesAfterServerKill(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var seqs []int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := client.VerifySignature(hookSecret, r.Header.Get(api.SignatureHeader), body, time.Now(), 0); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		time.Sleep(150 * time.Millisecond) // a slow receiver: a backlog builds up
		var ev struct {
			Sequence string           `json:"sequence"`
			Data     api.WebhookEvent `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		seq, _ := strconv.ParseInt(ev.Sequence, 10, 64)
		mu.Lock()
		defer mu.Unlock()
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			return // a redelivery: at least once
		}
		seqs = append(seqs, seq)
		for _, o := range ev.Data.Objects {
			var v string
			_ = json.Unmarshal(o.Feedback.New["ip"], &v)
			got = append(got, v)
		}
	}))
	t.Cleanup(recv.Close)
	snapshot := func() ([]string, []int64) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...), append([]int64(nil), seqs...)
	}

	c := newCluster(t, sqliteStore)
	c.createConsumer("mgmt-1")
	c.startAgent("mgmt-1")
	ns := c.namespace("kill")
	svc := c.createLBService(ns, "router", "10.0.0.0")
	c.mustDo("POST", "/subscriptions", map[string]any{"name": "slow", "url": recv.URL,
		"secret": hookSecret, "events": []string{"feedback"}}, nil)
	c.createBundle(seedBundle("mgmt-1", ns))
	eventually(t, 10*time.Second, "first event", func() bool { g, _ := snapshot(); return len(g) > 0 })

	var want []string
	for i := 1; i <= 12; i++ {
		ip := "10.0.0." + strconv.Itoa(i)
		svc = c.setLBIP(svc, ip)
		want = append(want, ip)
		time.Sleep(60 * time.Millisecond)
	}
	var sub api.Subscription
	c.mustDo("GET", "/subscriptions/slow", nil, &sub)
	c.server.Kill()
	before, _ := snapshot()
	t.Logf("killed the server with %d values received and a backlog of %d", len(before), sub.Status.Backlog)
	c.server.Restart()
	c.waitReady(c.rest + "/readyz")
	last := want[len(want)-1]
	eventually(t, 20*time.Second, "the last value after the restart", func() bool {
		g, _ := snapshot()
		return len(g) > 0 && g[len(g)-1] == last
	})
	g, s := snapshot()
	// In order: each value received is later in want than the one before.
	pos := -1
	for _, v := range g[1:] {
		i := indexOf(want, v)
		if i < pos {
			t.Fatalf("values out of order: %v (sequences %v)", g, s)
		}
		pos = i
	}
	if len(before) >= len(g) {
		t.Errorf("nothing was delivered after the restart: before %v, after %v", before, g)
	}
	t.Logf("received %d values in order across the kill (sequences %v)", len(g), s)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
