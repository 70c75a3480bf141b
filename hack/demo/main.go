// Command demo runs the stale-bundle incident of the Maestro runbook on
// `baton dev` and prints a timeline: the shared-ingress Service is observed
// with its load balancer IP, deleted (the management cluster is rebuilt) and
// recreated with a new IP. Each step shows how long baton took to report it.
//
// Run it with `make demo`. When a `baton dev` already runs (its REST API
// answers on 127.0.0.1:8000 and .baton/dev/kubeconfig exists), the demo
// uses it instead of starting its own; -server and -kubeconfig point it at
// another one (`make demo DEMO_ARGS='-server http://127.0.0.1:8002 -kubeconfig …'`).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

const (
	ns       = "hypershift-sharedingress"
	oldIP    = "20.1.2.3"
	newIP    = "20.9.8.7"
	restAddr = "127.0.0.1:8000"
	// devKubeconfig is where `baton dev` (default --data-dir) writes its kubeconfig.
	devKubeconfig = ".baton/dev/kubeconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	bin := envOr("BATON_BIN", "bin/baton")
	server := flag.String("server", "", "REST URL of a running baton dev to use (default: reuse one on "+restAddr+", else start one)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of that baton dev's cluster (default "+devKubeconfig+")")
	flag.Parse()
	if *server == "" && ready(ctx, "http://"+restAddr) {
		*server = "http://" + restAddr
	}
	if *server != "" {
		if *kubeconfig == "" {
			*kubeconfig = devKubeconfig
		}
		if _, err := os.Stat(*kubeconfig); err != nil {
			return fmt.Errorf("a server answers on %s but its cluster's kubeconfig is missing (%v): pass -kubeconfig FILE of that baton dev, or stop it", *server, err)
		}
		fmt.Printf("Using the running baton dev at %s (kubeconfig %s)…\n", *server, *kubeconfig)
		return connect(ctx, bin, *server, *kubeconfig)
	}
	data, err := os.MkdirTemp("", "baton-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)

	fmt.Println("Starting baton dev (server, local kube-apiserver + etcd, agent for consumer dev)…")
	dev := exec.Command(bin, "dev", "--data-dir", data)
	dev.Stderr = os.Stderr
	out, err := dev.StdoutPipe()
	if err != nil {
		return err
	}
	if err := dev.Start(); err != nil {
		return fmt.Errorf("starting %s dev: %w", bin, err)
	}
	defer func() {
		_ = dev.Process.Signal(os.Interrupt)
		_ = dev.Wait()
	}()
	if err := waitFor(out, "Press Ctrl-C to stop.", 15*time.Minute); err != nil {
		return fmt.Errorf("baton dev did not come up: %w", err)
	}
	return connect(ctx, bin, "http://"+restAddr, filepath.Join(data, "kubeconfig"))
}

// ready reports whether a baton server answers /readyz at base.
func ready(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func connect(ctx context.Context, bin, server, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rest, err := client.New(server)
	if err != nil {
		return err
	}
	return scenario(ctx, bin, server, kubeconfig, kube, rest)
}

func scenario(ctx context.Context, bin, server, kubeconfig string, kube kubernetes.Interface, rest *client.Client) error {
	tl := &timeline{start: time.Now()}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// A reused cluster may still hold the Service of an earlier run.
	if err := kube.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	svc, err := createService(ctx, kube, oldIP)
	if err != nil {
		return err
	}
	tl.step("Service %s/router exists with load balancer IP %s (uid %s)", ns, oldIP, short(svc.UID))

	apply := exec.CommandContext(ctx, bin, "apply", "-f", "examples/shared-ingress.yaml", "--server", server)
	if msg, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("baton apply: %v: %s", err, msg)
	}
	tl.step("baton apply -f examples/shared-ingress.yaml (ReadOnly, feedback ip = .status.loadBalancer.ingress[0].ip)")
	b, err := rest.BundleByName(ctx, "dev", "shared-ingress")
	if err != nil {
		return err
	}
	id := b.ID
	if _, err := tl.await(ctx, rest, id, "REST reports ip="+oldIP, func(e observed) bool { return e.ip == oldIP && e.uid == string(svc.UID) }); err != nil {
		return err
	}

	if err := kube.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		return err
	}
	tl.step("Service deleted (the management cluster is being rebuilt)")
	if _, err := tl.await(ctx, rest, id, "REST reports the Service NotFound, no IP", func(e observed) bool { return !e.exists && !e.hasIP }); err != nil {
		return err
	}

	svc, err = createService(ctx, kube, newIP)
	if err != nil {
		return err
	}
	tl.step("Service recreated; the cloud assigns IP %s (uid %s)", newIP, short(svc.UID))
	seen, err := tl.await(ctx, rest, id, "REST reports ip="+newIP+" with the new uid", func(e observed) bool { return e.ip == newIP && e.uid == string(svc.UID) })
	if err != nil {
		return err
	}

	fmt.Println()
	tl.print()
	fmt.Println()
	if seen.staleAfterDelete {
		return errors.New("the old IP was reported after the delete: baton broke its promise")
	}
	fmt.Printf("The old IP was never reported after the Service was gone; no dummy port, no agent restart.\n\n")
	fmt.Println("$ baton doctor   # compares every reported value with the live cluster")
	doctor := exec.CommandContext(ctx, bin, "doctor", "--kubeconfig", kubeconfig, "--server", server, "--consumer", "dev")
	doctor.Stdout, doctor.Stderr = os.Stdout, os.Stderr
	return doctor.Run()
}

func createService(ctx context.Context, kube kubernetes.Interface, ip string) (*corev1.Service, error) {
	svc, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "router"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	return kube.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
}

// observed is what REST says about the router Service.
type observed struct {
	ip, uid          string
	hasIP, exists    bool
	staleAfterDelete bool
}

func read(b *api.ResourceBundle) observed {
	var o observed
	if b.Status == nil || len(b.Status.ResourceStatus) == 0 {
		return o
	}
	rs := b.Status.ResourceStatus[0]
	o.uid, o.exists = rs.Observed.UID, rs.Observed.Exists
	for _, v := range rs.StatusFeedbacks.Values {
		if v.Name == "ip" && v.Value.String != nil {
			o.ip, o.hasIP = *v.Value.String, true
		}
	}
	return o
}

type event struct {
	at    time.Duration
	what  string
	delay time.Duration // since the previous cluster step; 0 for cluster steps
}

type timeline struct {
	start    time.Time
	last     time.Time
	events   []event
	gone     bool // REST has shown the Service missing
	oldAfter bool // …and later the old IP again (must never happen)
}

func (t *timeline) step(format string, args ...any) {
	t.last = time.Now()
	t.events = append(t.events, event{at: t.last.Sub(t.start), what: fmt.Sprintf(format, args...)})
}

// await polls the bundle every 5 ms until cond holds, and records the delay
// since the last cluster step. It also notes any old IP seen after the
// Service was reported gone.
func (t *timeline) await(ctx context.Context, rest *client.Client, id, what string, cond func(observed) bool) (observed, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := rest.GetBundle(ctx, id)
		if err == nil {
			o := read(b)
			if !o.exists && o.uid == "" && b.Status != nil && len(b.Status.ResourceStatus) > 0 {
				t.gone = true
			}
			if t.gone && o.ip == oldIP {
				t.oldAfter = true
			}
			o.staleAfterDelete = t.oldAfter
			if cond(o) {
				now := time.Now()
				t.events = append(t.events, event{at: now.Sub(t.start), what: what, delay: now.Sub(t.last)})
				return o, nil
			}
		}
		select {
		case <-ctx.Done():
			return observed{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return observed{}, fmt.Errorf("timed out waiting until %s", what)
}

func (t *timeline) print() {
	fmt.Println("Timeline (seconds since the demo started):")
	for _, e := range t.events {
		if e.delay > 0 {
			fmt.Printf("  %7.3f   └─ %s   (+%d ms)\n", e.at.Seconds(), e.what, e.delay.Milliseconds())
			continue
		}
		fmt.Printf("  %7.3f   %s\n", e.at.Seconds(), e.what)
	}
}

func waitFor(r interface{ Read([]byte) (int, error) }, line string, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), line) {
				done <- nil
				for sc.Scan() {
				}
				return
			}
		}
		done <- errors.New("baton dev exited")
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return errors.New("timed out")
	}
}

func short(uid any) string { s := fmt.Sprint(uid); return s[:8] }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
