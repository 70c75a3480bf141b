package chaos

import "testing"

// The kube-apiserver proxy's target: rest.Config.Host of envtest ends in
// "/", which once made every agent's kubeconfig point at nothing.
func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"https://127.0.0.1:39263/": "127.0.0.1:39263",
		"https://127.0.0.1:39263":  "127.0.0.1:39263",
		"127.0.0.1:39263":          "127.0.0.1:39263",
	} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMixRefusesWhatTheRunCannotInject(t *testing.T) {
	for _, tc := range []struct{ mix, store, transport string }{
		{"pgterm=1", "sqlite", "grpc"},
		{"broker=1", "sqlite", "grpc"},
		{"bogus=1", "sqlite", "grpc"},
	} {
		if _, err := parseMix(tc.mix, tc.store, tc.transport, true); err == nil {
			t.Errorf("parseMix(%q) on %s/%s: no error", tc.mix, tc.store, tc.transport)
		}
	}
	if _, err := parseMix("pgkill=1", "postgres", "grpc", false); err == nil {
		t.Error("pgkill without a PostgreSQL of the run's own: no error")
	}
	if _, err := parseMix(defaultMix("postgres", "mqtt", true), "postgres", "mqtt", true); err != nil {
		t.Errorf("default mix refused: %v", err)
	}
}
