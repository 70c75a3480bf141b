package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-dev/baton/internal/cli"
	"github.com/baton-dev/baton/pkg/api"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runInBackground runs a baton command until the test ends or stop is called.
func runInBackground(t *testing.T, args ...string) (stop func()) {
	t.Helper()
	root := cli.NewRoot()
	root.SetArgs(args)
	var out syncWriter
	root.SetOut(&out)
	root.SetErr(&out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("baton %s did not stop", args[0])
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type syncWriter struct{}

func (syncWriter) Write(p []byte) (int, error) { return len(p), nil }

// reportedIP reads the bundle's reported ip ("" when none).
func reportedIP(t *testing.T, server string) (string, api.Observed) {
	t.Helper()
	out, _, err := run("get", "bundle", "e2e-ingress", "--consumer", "e2e", "-o", "json", "--server", server)
	if err != nil {
		return "", api.Observed{}
	}
	var b api.ResourceBundle
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	if b.Status == nil || len(b.Status.ResourceStatus) == 0 {
		return "", api.Observed{}
	}
	rs := b.Status.ResourceStatus[0]
	for _, v := range rs.StatusFeedbacks.Values {
		if v.Name == "ip" && v.Value.String != nil {
			return *v.Value.String, rs.Observed
		}
	}
	return "", rs.Observed
}

func waitIP(t *testing.T, server, ip string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 60*time.Second {
		if got, _ := reportedIP(t, server); got == ip {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, obs := reportedIP(t, server)
	t.Fatalf("reported ip %q (%+v) after 60s; want %q", got, obs, ip)
	return 0
}

// TestSeedScenarioEndToEnd runs the seed runbook's scenario through the
// real baton server and agent: a ReadOnly bundle observes the shared
// ingress Service; the Service is recreated with a new IP; baton reports
// the new IP by itself and baton doctor finds nothing to fix.
func TestSeedScenarioEndToEnd(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "e2e-sharedingress"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createService := func(ip string) {
		t.Helper()
		svc, err := kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "router"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if _, err := kc.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createService(oldIP)

	httpAddr, agentAddr := freePort(t), freePort(t)
	server := "http://" + httpAddr
	kubeconfig := writeKubeconfig(t, cfg)
	runInBackground(t, "server", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--agent-addr", agentAddr,
		"--grpc-addr", freePort(t), "--log-level", "error")
	agentArgs := []string{"agent", "--consumer", "e2e", "--kubeconfig", kubeconfig, "--server", agentAddr,
		"--metrics-addr", "", "--records-namespace", "default", "--log-level", "error"}
	stopAgent := runInBackground(t, agentArgs...)

	bundle := fmt.Sprintf(`kind: Consumer
name: e2e
---
name: e2e-ingress
consumer_name: e2e
manifests:
- {apiVersion: v1, kind: Service, metadata: {name: router, namespace: %s}}
manifest_configs:
- resourceIdentifier: {group: "", resource: services, namespace: %s, name: router}
  updateStrategy: {type: ReadOnly}
  feedbackRules:
  - type: JSONPaths
    jsonPaths: [{name: ip, path: ".status.loadBalancer.ingress[0].ip"}]
delete_option: {propagationPolicy: Orphan}
`, ns, ns)
	var err error
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
		root := cli.NewRoot()
		root.SetArgs([]string{"apply", "-f", "-", "--server", server})
		root.SetIn(strings.NewReader(bundle))
		root.SetOut(&syncWriter{})
		if err = root.ExecuteContext(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("first report after create: %s", waitIP(t, server, oldIP))
	doctorArgs := []string{"doctor", "--kubeconfig", kubeconfig, "--server", server, "--consumer", "e2e"}
	if out, _, err := run(doctorArgs...); err != nil {
		t.Fatalf("doctor after create: %v\n%s", err, out)
	}

	// The runbook's scenario: the Service comes back with a new IP.
	if err := kc.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	createService(newIP)
	t.Logf("new IP reported after recreate: %s", waitIP(t, server, newIP))
	if out, _, err := run(doctorArgs...); err != nil {
		t.Fatalf("doctor after recreate: %v\n%s", err, out)
	}
	// --fix with nothing to fix succeeds at once.
	if out, _, err := run(append(doctorArgs, "--fix", "--timeout", "10s")...); err != nil || !strings.Contains(out, "all agree") {
		t.Fatalf("doctor --fix: %v\n%s", err, out)
	}

	// While the agent is down the Service changes again: the report is
	// stale, doctor says so, and --fix waits until the agent is back.
	stopAgent()
	if err := kc.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	const thirdIP = "20.7.7.7"
	createService(thirdIP)
	out, _, err := run(doctorArgs...)
	if exitCode(err) != 1 || !strings.Contains(out, "uid") || !strings.Contains(out, newIP) || !strings.Contains(out, thirdIP) {
		t.Fatalf("doctor with the agent down: %v\n%s", err, out)
	}
	go func() {
		time.Sleep(time.Second)
		runInBackground(t, agentArgs...)
	}()
	start := time.Now()
	out, errOut, err := run(append(doctorArgs, "--fix", "--timeout", "60s")...)
	if err != nil || !strings.Contains(out, "resynced 1 bundle: all agree") {
		t.Fatalf("doctor --fix: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "not connected") {
		t.Errorf("no warning about the disconnected agent:\n%s", errOut)
	}
	t.Logf("doctor --fix agreed after %s (agent restarted after 1s)", time.Since(start))
}
