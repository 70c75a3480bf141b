package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-dev/baton/internal/auth/authn/oidctest"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// authedCall sends one REST request with a bearer token and returns the
// status and body.
func authedCall(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ExtensionsHeader, "true") // the source member
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKubernetesSourceOverREST: a `baton server` process authenticates a
// real service-account token with TokenReview and authorizes it with
// SubjectAccessReview on /sources/<source> (verbs pub, sub) against the
// real kube-apiserver, on REST (create, list, watch) and on the gRPC
// source port; other sources, an unnamed source, a forged token and a
// revoked binding are refused.
func TestKubernetesSourceOverREST(t *testing.T) {
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(kubeCfg)
	suffix := fmt.Sprintf("%08x", mrand.Uint32())
	sa, err := kc.CoreV1().ServiceAccounts("default").Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci-" + suffix}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role := "baton-source-ci-" + suffix
	if _, err := kc.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/sources/ci"}, Verbs: []string{"pub", "sub"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.RbacV1().ClusterRoles().Delete(ctx, role, metav1.DeleteOptions{}) })
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: "default"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sat := tr.Status.Token

	cfg := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(cfg, []byte("tokens:\n- {token: admin-tok, subject: ops, role: admin}\nkubernetes:\n  kubeconfig: "+kubeconfig+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, sqliteStore, "--auth-config", cfg)
	v1 := c.rest + api.BasePath
	if code, body := authedCall(t, "POST", v1+"/consumers", "admin-tok", `{"name":"c1"}`); code != http.StatusCreated {
		t.Fatalf("create consumer: %d %s", code, body)
	}
	bundle := func(name, source string) string {
		return `{"consumer_name":"c1","source":"` + source + `","metadata":{"name":"` + name + `"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"default"}}]}`
	}
	if code, body := authedCall(t, "POST", v1+"/resource-bundles", "admin-tok", bundle("other-1", "other")); code != http.StatusCreated {
		t.Fatalf("admin create: %d %s", code, body)
	}
	if code, body := authedCall(t, "GET", v1+"/resource-bundles", "forged."+sat[:20], ""); code != http.StatusUnauthorized {
		t.Errorf("forged token: %d %s; want 401", code, body)
	}

	// pub on /sources/ci: the service account creates ci's bundles, not other's.
	code, body := authedCall(t, "POST", v1+"/resource-bundles", sat, bundle("ci-1", "ci"))
	var ci1 api.ResourceBundle
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &ci1) != nil {
		t.Fatalf("service account creating ci's bundle: %d %s", code, body)
	}
	if code, body := authedCall(t, "POST", v1+"/resource-bundles", sat, bundle("x", "other")); code != http.StatusForbidden {
		t.Errorf("service account creating other's bundle: %d %s; want 403", code, body)
	}

	// sub on /sources/ci: lists name the source; ci's are listed, other's refused.
	list := func(search string) (int, string) {
		return authedCall(t, "GET", v1+"/resource-bundles?search="+url.QueryEscape(search), sat, "")
	}
	if code, body := authedCall(t, "GET", v1+"/resource-bundles", sat, ""); code != http.StatusForbidden || !strings.Contains(body, "search=source=") {
		t.Errorf("list without a source: %d %s; want 403 saying to name the source", code, body)
	}
	code, body = list("source = 'ci'")
	var l api.List[api.ResourceBundle]
	if code != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil || l.Total != 1 || len(l.Items) != 1 || l.Items[0].ID != ci1.ID {
		t.Fatalf("list of ci: %d %s; want ci's one bundle", code, body)
	}
	if code, body := list("consumer_name = 'c1' and source in ('ci')"); code != http.StatusOK || !strings.Contains(body, ci1.ID) {
		t.Errorf("list of ci with another term: %d %s", code, body)
	}
	for _, s := range []string{"source = 'other'", "source in ('ci', 'other')", "source = 'ci' or name = 'other-1'"} {
		if code, body := list(s); code != http.StatusForbidden {
			t.Errorf("list %q: %d %s; want 403", s, code, body)
		}
	}

	// Watch of ci: sees ci's new bundle, never other's.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(wctx, "GET", v1+"/resource-bundles?watch=true&search="+url.QueryEscape("source='ci'"), nil)
	req.Header.Set("Authorization", "Bearer "+sat)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch of ci: %s %s", resp.Status, b)
	}
	if code, body := authedCall(t, "POST", v1+"/resource-bundles", "admin-tok", bundle("other-2", "other")); code != http.StatusCreated {
		t.Fatalf("admin create: %d %s", code, body)
	}
	code, body = authedCall(t, "POST", v1+"/resource-bundles", sat, bundle("ci-2", "ci"))
	var ci2 api.ResourceBundle
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &ci2) != nil {
		t.Fatalf("service account creating ci-2: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "other-2") {
			t.Fatalf("the watch of ci delivered other's bundle: %s", line)
		}
		if strings.Contains(line, ci2.ID) {
			break
		}
	}
	if sc.Err() != nil {
		t.Fatalf("watch of ci ended before ci-2 arrived: %v", sc.Err())
	}
	if code, body := authedCall(t, "GET", v1+"/resource-bundles?watch=true&search="+url.QueryEscape("source='other'"), sat, ""); code != http.StatusForbidden {
		t.Errorf("watch of other: %d %s; want 403", code, body)
	}

	// The gRPC source port: the same identity subscribes as ci, not as other.
	cc, err := ggrpc.NewClient(c.grpcAddr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rpc := pb.NewCloudEventServiceClient(cc)
	subscribe := func(source string) error { return subscribeAs(ctx, rpc, sat, source) }
	if err := subscribe("ci"); err != nil {
		t.Errorf("gRPC subscribe as ci: %v", err)
	}
	if err := subscribe("other"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC subscribe as other: %v; want PermissionDenied", err)
	}

	// A revoked binding is refused on the next request: reviews are not cached.
	if err := kc.RbacV1().ClusterRoleBindings().Delete(ctx, role, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a list refused after the binding is deleted", func() bool {
		code, _ := list("source = 'ci'")
		return code == http.StatusForbidden
	})
}

// subscribeAs opens a gRPC source subscription for source with token and
// returns nil once the server accepted it (its header names the
// subscription), or the error it was refused with.
func subscribeAs(ctx context.Context, rpc pb.CloudEventServiceClient, token, source string) error {
	sctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), 20*time.Second)
	defer cancel()
	stream, err := rpc.Subscribe(sctx, &pb.SubscriptionRequest{Source: source, DataType: cloudevents.DataType})
	if err != nil {
		return err
	}
	hdr, err := stream.Header()
	if err == nil && len(hdr) > 0 {
		return nil
	}
	if err == nil {
		_, err = stream.Recv()
	}
	return err
}

// TestOIDCThroughServer: a `baton server` process verifies OpenID Connect
// JWTs of a local issuer on REST and on the gRPC source port: a valid
// token acts as the source its group maps to; expired, forged and
// wrong-audience tokens are 401 / Unauthenticated; a reader's cannot write.
func TestOIDCThroughServer(t *testing.T) {
	is := oidctest.Start(t)
	cfg := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(cfg, []byte(`tokens:
- {token: admin-tok, subject: ops, role: admin}
oidc:
  issuerURL: `+is.URL+`
  audience: baton
  roles:
  - {value: team-a, role: source, source: a}
  - {value: sre, role: reader}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, sqliteStore, "--auth-config", cfg)
	v1 := c.rest + api.BasePath
	if code, body := authedCall(t, "POST", v1+"/consumers", "admin-tok", `{"name":"c1"}`); code != http.StatusCreated {
		t.Fatalf("create consumer: %d %s", code, body)
	}
	hour := time.Now().Add(time.Hour)
	teamA := is.Token(t, nil, "baton", hour, "team-a")
	sre := is.Token(t, nil, "baton", hour, "sre")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		"expired":        is.Token(t, nil, "baton", time.Now().Add(-time.Minute), "team-a"),
		"forged":         is.Token(t, other, "baton", hour, "team-a"),
		"wrong audience": is.Token(t, nil, "other", hour, "team-a"),
	}
	body := `{"consumer_name":"c1","metadata":{"name":"oidc-1"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"oidc-1","namespace":"default"}}]}`
	code, out := authedCall(t, "POST", v1+"/resource-bundles", teamA, body)
	var b api.ResourceBundle
	if code != http.StatusCreated || json.Unmarshal([]byte(out), &b) != nil || b.Source != "a" {
		t.Fatalf("team-a create: %d %s; want 201 with source a", code, out)
	}
	if code, out := authedCall(t, "GET", v1+"/resource-bundles", teamA, ""); code != http.StatusOK || !strings.Contains(out, b.ID) {
		t.Errorf("team-a list: %d %s", code, out)
	}
	if code, out := authedCall(t, "DELETE", v1+"/resource-bundles/"+b.ID, sre, ""); code != http.StatusForbidden {
		t.Errorf("reader delete: %d %s; want 403", code, out)
	}
	for name, tok := range refused {
		if code, out := authedCall(t, "GET", v1+"/resource-bundles", tok, ""); code != http.StatusUnauthorized || strings.Contains(out, tok) {
			t.Errorf("%s token on REST: %d %s; want 401 that does not echo it", name, code, out)
		}
	}

	cc, err := ggrpc.NewClient(c.grpcAddr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rpc := pb.NewCloudEventServiceClient(cc)
	ctx := context.Background()
	if err := subscribeAs(ctx, rpc, teamA, "a"); err != nil {
		t.Errorf("team-a subscribing as a: %v", err)
	}
	if err := subscribeAs(ctx, rpc, teamA, "b"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("team-a subscribing as b: %v; want PermissionDenied", err)
	}
	if err := subscribeAs(ctx, rpc, sre, "a"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("reader on the source port: %v; want PermissionDenied", err)
	}
	for name, tok := range refused {
		if err := subscribeAs(ctx, rpc, tok, "a"); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s token on gRPC: %v; want Unauthenticated", name, err)
		}
	}
}

// TestAgentCannotReportForAnotherConsumer: through a `baton server`
// process, the agent token of mgmt-1 cannot open mgmt-2's session, and a
// status it sends for a bundle of mgmt-2 is dropped, while its report for
// its own bundle, sent after it on the same stream, is stored.
func TestAgentCannotReportForAnotherConsumer(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(cfg, []byte(`tokens:
- {token: admin-tok, subject: ops, role: admin}
- {token: agent1-tok, subject: agent-mgmt-1, role: agent, consumer: mgmt-1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, sqliteStore, "--auth-config", cfg)
	v1 := c.rest + api.BasePath
	ids := map[string]string{}
	for _, consumer := range []string{"mgmt-1", "mgmt-2"} {
		if code, body := authedCall(t, "POST", v1+"/consumers", "admin-tok", `{"name":"`+consumer+`"}`); code != http.StatusCreated {
			t.Fatalf("create consumer: %d %s", code, body)
		}
		code, body := authedCall(t, "POST", v1+"/resource-bundles", "admin-tok", `{"consumer_name":"`+consumer+
			`","metadata":{"name":"b"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","namespace":"default"}}]}`)
		var b api.ResourceBundle
		if code != http.StatusCreated || json.Unmarshal([]byte(body), &b) != nil {
			t.Fatalf("create bundle: %d %s", code, body)
		}
		ids[consumer] = b.ID
	}
	observed := func(id string) int64 {
		code, body := authedCall(t, "GET", v1+"/resource-bundles/"+id, "admin-tok", "")
		var b api.ResourceBundle
		if code != http.StatusOK || json.Unmarshal([]byte(body), &b) != nil {
			t.Fatalf("get bundle: %d %s", code, body)
		}
		return b.Status.ObservedVersion
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := grpc.DialOptions{Token: "agent1-tok"}
	conn, err := grpc.Dial(ctx, c.agentRPC, "mgmt-1", opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Up():
	case <-time.After(30 * time.Second):
		t.Fatal("the agent of mgmt-1 did not connect within 30s")
	}
	if err := conn.Send(ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1", Batches: 1}}); err != nil {
		t.Fatal(err)
	}
	report := func(id string, rev int64) {
		t.Helper()
		st := api.ReportedStatus{Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue,
			Reason: "Applied", LastTransitionTime: metav1.Now()}}}
		err := conn.Send(ctx, protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: id, Generation: 1,
			Epoch: "e1", Revision: rev, Reported: st, Hash: protocol.HashStatus(st), At: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
	}
	report(ids["mgmt-2"], 1)
	report(ids["mgmt-1"], 2)
	eventually(t, 30*time.Second, "mgmt-1's own report stored", func() bool { return observed(ids["mgmt-1"]) == 1 })
	if got := observed(ids["mgmt-2"]); got != 0 {
		t.Errorf("mgmt-2's bundle took mgmt-1's report: observed version %d", got)
	}

	// The same token cannot open mgmt-2's session.
	other, err := grpc.Dial(ctx, c.agentRPC, "mgmt-2", opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-other.Up():
		t.Error("the token of mgmt-1 opened a session as mgmt-2")
	case <-time.After(2 * time.Second): // refusals are retried; none succeeds
	}
}
