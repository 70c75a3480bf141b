package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWebViewListsStaleFirst loads /ui of a real server in headless
// Chromium: consumer mgmt-1 has an agent (its bundle is Fresh), mgmt-2 has
// none (Stale/AgentDisconnected). Through the DOM, the stale bundle must be
// the first row with its reason, and the fresh one must follow; then the
// bundle page shows the observed object. Screenshots are saved in
// $BATON_TEST_ARTIFACTS (default: a directory under the system temp dir).
func TestWebViewListsStaleFirst(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: apt-get install -y chromium (.ci/run installs it when missing)")
	}
	c := newCluster(t, sqliteStore)
	c.createConsumer("mgmt-1")
	c.createConsumer("mgmt-2")
	c.startAgent("mgmt-1")
	ns := c.namespace("ui")
	c.createLBService(ns, "router", "20.1.2.3")
	fresh := c.createBundle(seedBundle("mgmt-1", ns))
	stale := c.createBundle(configMapBundle("mgmt-2", "orphaned-config", ns, "cfg", "v", "ServerSideApply"))
	eventually(t, 10*time.Second, "fresh bundle reported", func() bool {
		b, _, err := c.getBundle(fresh.ID)
		state, _ := freshness(b)
		return err == nil && state == "Fresh"
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1200, 700))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	type row struct{ ID, State, Reason, Text string }
	if err := chromedp.Do(ctx, chromedp.Navigate(c.rest+"/ui/")); err != nil {
		t.Fatalf("loading the web view: %v", err)
	}
	// The page shows what REST says; wait until it shows the fresh bundle
	// Fresh (the agent's heartbeat may make it flap on a loaded machine).
	waitDOM(t, ctx, `document.querySelector('#bundles tr.bundle[data-id="`+fresh.ID+`"][data-freshness="Fresh"]') && document.querySelector("#live.on")`)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("#bundles tr.bundle")].map(r => ({
		ID: r.dataset.id, State: r.dataset.freshness, Reason: r.dataset.reason,
		Text: r.querySelector(".reason").textContent }))`))
	if err != nil {
		t.Fatalf("reading the bundle rows: %v", err)
	}
	screenshot(t, ctx, "ui-fleet.png")
	if len(rows) != 2 {
		t.Fatalf("bundle rows %v, want 2", rows)
	}
	if rows[0].ID != stale.ID || rows[0].State != "Stale" || rows[0].Reason != "AgentDisconnected" || rows[0].Text != "AgentDisconnected" {
		t.Errorf("first row %+v, want the stale bundle %s with reason AgentDisconnected", rows[0], stale.ID)
	}
	if rows[1].ID != fresh.ID || rows[1].State != "Fresh" {
		t.Errorf("second row %+v, want the fresh bundle %s", rows[1], fresh.ID)
	}

	// The bundle page, and a live update through the watch stream: the
	// Service's IP changes and the page shows the new value without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(c.rest+"/ui/#/bundle/"+fresh.ID)); err != nil {
		t.Fatalf("bundle page: %v", err)
	}
	waitDOM(t, ctx, `document.querySelector("#objects tr.object")`)
	objects, err := chromedp.Run(ctx, chromedp.Text(`#objects`))
	if err != nil || !strings.Contains(objects, "20.1.2.3") || !strings.Contains(objects, "router") {
		t.Errorf("bundle page objects lack the Service and its IP (%v):\n%s", err, objects)
	}
	svc, err := c.kube.CoreV1().Services(ns).Get(context.Background(), "router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.setLBIP(svc, "20.9.8.7")
	waitDOM(t, ctx, `document.querySelector("#objects .feedback").textContent.includes("20.9.8.7") && document.querySelector("#history tr td")`)
	screenshot(t, ctx, "ui-bundle.png")
}

// waitDOM waits until the page's expression is truthy, dumping the page on
// a timeout.
func waitDOM(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerHTML"))
			t.Fatalf("timed out waiting for %s (%v); the page:\n%.3000s", expr, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the page as a test artefact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	save(t, name, shot)
}

// save writes a test artefact and logs where.
func save(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("BATON_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "baton-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
