package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/baton-dev/baton/internal/cli"
	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

const (
	oldIP = "20.1.2.3"
	newIP = "20.9.9.9"
)

// maestro serves recorded Maestro list responses with the reported IP
// templated in. Until a bundle is resynced it reports reportIP; after a
// resync request (which real Maestro does not have: 404 unless
// resyncWorks) it reports fixedIP.
type maestro struct {
	t           *testing.T
	mu          sync.Mutex
	reportIP    string
	fixedIP     string
	resyncWorks bool
	resynced    bool
}

func (m *maestro) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ip := m.reportIP
	if m.resynced {
		ip = m.fixedIP
	}
	data, err := os.ReadFile(filepath.Join("testdata", "maestro-resource-bundles.json"))
	if err != nil {
		m.t.Error(err)
		return
	}
	data = bytes.ReplaceAll(data, []byte("{{IP}}"), []byte(ip))
	var list api.List[json.RawMessage]
	if err := json.Unmarshal(data, &list); err != nil {
		m.t.Error(err)
		return
	}
	base := api.BasePath + "/resource-bundles"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		if s := r.URL.Query().Get("search"); s != "consumer_name='mgmt-1'" {
			m.t.Errorf("search %q; want consumer_name='mgmt-1'", s)
		}
		_, _ = w.Write(data)
		return
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/resync") && m.resyncWorks:
		m.resynced = true
		w.WriteHeader(http.StatusAccepted)
		return
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, base+"/"):
		id := strings.TrimPrefix(r.URL.Path, base+"/")
		for _, it := range list.Items {
			if bytes.Contains(it, []byte(`"id": "`+id+`"`)) || bytes.Contains(it, []byte(`"id":"`+id+`"`)) {
				_, _ = w.Write(it)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"kind":"Error","id":"7","href":"/api/maestro/v1/errors/7","code":"maestro-7","reason":"not found"}`))
}

// setupCluster creates the shared ingress Service with a load balancer IP
// and the ConfigMap of the second bundle; it returns a kubeconfig path.
func setupCluster(t *testing.T) string {
	t.Helper()
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "hypershift-sharedingress"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "router"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: newIP}}
	if _, err := kc.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-config"}, Data: map[string]string{"zone": "hcp.example.net"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return writeKubeconfig(t, cfg)
}

func writeKubeconfig(t *testing.T, c *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs baton in-process and returns stdout, stderr and the error.
func run(args ...string) (string, string, error) {
	root := cli.NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ex *cli.ExitError
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 1
}

func TestDoctorAgainstMaestro(t *testing.T) {
	kubeconfig := setupCluster(t)
	m := &maestro{t: t, reportIP: oldIP}
	srv := httptest.NewServer(m)
	defer srv.Close()
	args := []string{"doctor", "--kubeconfig", kubeconfig, "--server", srv.URL, "--consumer", "mgmt-1"}
	multi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"kind":"ResourceBundleList","page":1,"size":2,"total":2,"items":[` +
			`{"id":"a","name":"a","consumer_name":"mgmt-2"},{"id":"b","name":"b","consumer_name":"mgmt-1"}]}`))
	}))
	defer multi.Close()

	t.Run("stale IP is a mismatch", func(t *testing.T) {
		out, _, err := run(args...)
		if exitCode(err) != 1 {
			t.Fatalf("exit code %d (%v); want 1\n%s", exitCode(err), err, out)
		}
		for _, want := range []string{"BUNDLE", "shared-ingress", "mgmt-1", "Service hypershift-sharedingress/router", "feedback.ip", oldIP, newIP} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "dns-config") {
			t.Errorf("the agreeing bundle is listed:\n%s", out)
		}
		if err.Error() != "1 mismatch in 1 bundle" {
			t.Errorf("error %q", err)
		}
	})

	t.Run("several consumers need --consumer", func(t *testing.T) {
		_, _, err := run("doctor", "--kubeconfig", kubeconfig, "--server", multi.URL)
		if err == nil || !strings.Contains(err.Error(), "2 consumers (mgmt-1, mgmt-2): pass --consumer") {
			t.Errorf("got %v", err)
		}
	})

	t.Run("json output", func(t *testing.T) {
		out, _, err := run(append(args, "-o", "json")...)
		if exitCode(err) != 1 {
			t.Fatalf("exit code %d; want 1", exitCode(err))
		}
		var res struct {
			Objects    int
			Bundles    int
			Mismatches []struct{ Bundle, Field, Reported, Live string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if res.Objects != 2 || res.Bundles != 2 || len(res.Mismatches) != 1 ||
			res.Mismatches[0].Reported != oldIP || res.Mismatches[0].Live != newIP {
			t.Errorf("got %+v", res)
		}
	})

	t.Run("fix fails without a resync endpoint", func(t *testing.T) {
		_, _, err := run(append(args, "--fix", "--timeout", "5s")...)
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "resync") || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("got %v", err)
		}
	})

	t.Run("right IP agrees", func(t *testing.T) {
		m.mu.Lock()
		m.reportIP = newIP
		m.mu.Unlock()
		out, _, err := run(args...)
		if err != nil {
			t.Fatalf("exit code %d (%v)\n%s", exitCode(err), err, out)
		}
		if !strings.Contains(out, "checked 2 objects in 2 bundles: all agree with the cluster") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("fix resyncs and waits", func(t *testing.T) {
		m.mu.Lock()
		m.reportIP, m.fixedIP, m.resyncWorks, m.resynced = oldIP, newIP, true, false
		m.mu.Unlock()
		out, errOut, err := run(append(args, "--fix", "--interval", "10ms")...)
		if err != nil {
			t.Fatalf("exit code %d (%v)\n%s\n%s", exitCode(err), err, out, errOut)
		}
		if !strings.Contains(errOut, "waiting for 1 bundle… 1/1 agree") || !strings.Contains(out, "resynced 1 bundle: all agree with the cluster now") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	})

	t.Run("fix times out", func(t *testing.T) {
		m.mu.Lock()
		m.reportIP, m.fixedIP, m.resynced = oldIP, oldIP, false
		m.mu.Unlock()
		out, errOut, err := run(append(args, "--fix", "--interval", "10ms", "--timeout", "1s")...)
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 of 1 bundle still disagree after 1s") {
			t.Errorf("got %v\n%s\n%s", err, out, errOut)
		}
	})
}

func TestDoctorObjectDeleted(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	// The Service of the first test is gone in a fresh namespace here:
	// Maestro keeps reporting the IP of an object that does not exist.
	m := &maestro{t: t, reportIP: oldIP}
	srv := httptest.NewServer(m)
	defer srv.Close()
	kubeconfig := writeKubeconfig(t, cfg)
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "hypershift-sharedingress"
	if _, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Skip("runs after TestDoctorAgainstMaestro")
	}
	if err := kc.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, _, err := run("doctor", "--kubeconfig", kubeconfig, "--server", srv.URL, "--consumer", "mgmt-1")
	if exitCode(err) != 1 {
		t.Fatalf("exit code %d; want 1\n%s", exitCode(err), out)
	}
	for _, want := range []string{"exists", "true", "false", "feedback.ip", oldIP, "<not found>"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
