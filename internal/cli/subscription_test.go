package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
)

// Subscriptions through the CLI and REST of a real `baton server`: created
// with a secret from the environment, listed with their state, never
// showing the secret, rejected with a clear error when invalid, deleted.
func TestSubscriptionVerbs(t *testing.T) {
	srv, _, _ := startServerCLI(t)
	const secret = "s3cret-value-for-the-test"
	t.Setenv(EnvWebhookSecret, secret)
	out := must(t, srv, "create", "subscription", "dns", "--url", "http://127.0.0.1:9/hook", "--events", "feedback,deleted",
		"--search", "name = 'shared-ingress'", "--header", "X-Team=sre")
	if out != "subscription/dns created\n" {
		t.Errorf("create: %q", out)
	}
	out = must(t, srv, "get", "subscriptions")
	for _, want := range []string{"NAME", "BACKLOG", "dns", "http://127.0.0.1:9/hook", "feedback,deleted", "Active"} {
		if !strings.Contains(out, want) {
			t.Errorf("get subscriptions lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"get", "subscription", "dns", "-o", "json"}, {"get", "subs", "-o", "yaml"}, {"describe", "subscription", "dns"}} {
		if out := must(t, srv, args...); strings.Contains(out, secret) || !strings.Contains(out, "dns") {
			t.Errorf("%v shows the secret or not the subscription:\n%s", args, out)
		}
	}
	resp, err := http.Get(srv + api.BasePath + "/subscriptions/dns")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got api.Subscription
	if err := json.Unmarshal(body, &got); err != nil || got.Secret != "" || strings.Contains(string(body), secret) ||
		got.Status == nil || got.Status.State != api.SubscriptionActive || got.Headers["X-Team"] != "sre" {
		t.Errorf("GET subscription: %s (%v)", body, err)
	}
	fails(t, srv, []string{"HTTP 409"}, "create", "subscription", "dns", "--url", "http://127.0.0.1:9/x")
	fails(t, srv, []string{"url: want an absolute http:// or https:// URL", `unknown event kind "nope"`},
		"create", "subscription", "bad", "--url", "ftp://x", "--events", "nope")
	t.Setenv(EnvWebhookSecret, "short")
	fails(t, srv, []string{"secret: must be at least 16 bytes"}, "create", "subscription", "weak", "--url", "http://127.0.0.1:9/x")
	if out := must(t, srv, "delete", "subscription", "dns"); !strings.Contains(out, "subscription/dns deleted") {
		t.Errorf("delete: %q", out)
	}
	fails(t, srv, []string{"HTTP 404"}, "get", "subscription", "dns")
}

// A generated secret is printed once.
func TestSubscriptionGeneratedSecret(t *testing.T) {
	srv, _, _ := startServerCLI(t)
	t.Setenv(EnvWebhookSecret, "")
	out := must(t, srv, "create", "subscription", "gen", "--url", "http://127.0.0.1:9/hook")
	if !strings.Contains(out, "secret: ") || !strings.Contains(out, "not shown again") {
		t.Errorf("create without a secret: %q", out)
	}
}

func TestTop(t *testing.T) {
	srv, _, _ := startServerCLI(t)
	must(t, srv, "apply", "-f", "../../examples/")
	out := must(t, srv, "top")
	for _, want := range []string{"CONSUMER", "STALE REASONS", "dev", "TOTAL", "AgentDisconnected="} {
		if !strings.Contains(out, want) {
			t.Errorf("top lacks %q:\n%s", want, out)
		}
	}
	var s FleetSummary
	if err := json.Unmarshal([]byte(must(t, srv, "fleet", "-o", "json")), &s); err != nil || s.Total.Bundles == 0 ||
		s.Total.Stale != s.Total.Bundles || len(s.Consumers) != 1 || s.Consumers[0].Name != "dev" {
		t.Errorf("fleet -o json: %+v %v", s, err)
	}
}
