package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	t.Setenv("KUBECONFIG", writeKubeconfig(t, "https://from-env:6443"))

	cfg, err := (&agentOptions{}).restConfig()
	if err != nil || cfg.Host != "https://from-env:6443" {
		t.Fatalf("from $KUBECONFIG: host %q, err %v; want https://from-env:6443", host(cfg), err)
	}
	explicit := writeKubeconfig(t, "https://explicit:6443")
	cfg, err = (&agentOptions{kubeconfig: explicit}).restConfig()
	if err != nil || cfg.Host != "https://explicit:6443" {
		t.Fatalf("from --kubeconfig: host %q, err %v; want https://explicit:6443", host(cfg), err)
	}
	if _, err := (&agentOptions{kubeconfig: filepath.Join(t.TempDir(), "missing")}).restConfig(); err == nil {
		t.Fatal("a missing --kubeconfig was accepted")
	}
}

func TestAgentCommandFlags(t *testing.T) {
	out, err := runServerCLI(t, t.Context(), "agent")
	if err == nil || !strings.Contains(err.Error()+out, "consumer") {
		t.Errorf("agent without --consumer: err %v, out %q; want a required-flag error", err, out)
	}
	_, err = runServerCLI(t, t.Context(), "agent", "--consumer", "c1", "--log-level", "loud")
	if err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("bad --log-level: err %v; want it named", err)
	}
	_, err = runServerCLI(t, t.Context(), "agent", "--consumer", "c1", "--delete-propagation", "Orphan")
	if err == nil || !strings.Contains(err.Error(), "--delete-propagation") {
		t.Errorf("bad --delete-propagation: err %v; want it named", err)
	}
}

func host(c *rest.Config) string {
	if c == nil {
		return ""
	}
	return c.Host
}
