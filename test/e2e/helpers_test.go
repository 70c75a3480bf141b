package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/baton-dev/baton/pkg/api"
)

// namespace creates a fresh namespace for one test.
func (c *cluster) namespace(prefix string) string {
	c.t.Helper()
	name := prefix + "-" + rand.String(6)
	_, err := c.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return name
}

// createLBService creates a LoadBalancer Service and, when ip is set, plays
// the cloud provider by writing the ingress IP through the status subresource.
func (c *cluster) createLBService(ns, name, ip string) *corev1.Service {
	c.t.Helper()
	ctx := context.Background()
	svc, err := c.kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if ip != "" {
		svc = c.setLBIP(svc, ip)
	}
	return svc
}

func (c *cluster) setLBIP(svc *corev1.Service, ip string) *corev1.Service {
	c.t.Helper()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	out, err := c.kube.CoreV1().Services(svc.Namespace).UpdateStatus(context.Background(), svc, metav1.UpdateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// seedBundle is the runbook's shared-ingress bundle: ReadOnly on the router
// Service with the load balancer IP as feedback.
func seedBundle(consumer, ns string) map[string]any {
	return map[string]any{
		"consumer_name": consumer,
		"name":          "shared-ingress",
		"manifests": []any{map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "router", "namespace": ns},
		}},
		"manifest_configs": []any{map[string]any{
			"resourceIdentifier": map[string]any{"group": "", "resource": "services", "name": "router", "namespace": ns},
			"updateStrategy":     map[string]any{"type": "ReadOnly"},
			"feedbackRules": []any{map[string]any{"type": "JSONPaths", "jsonPaths": []any{
				map[string]any{"name": "ip", "path": ".status.loadBalancer.ingress[0].ip"}}}},
		}},
		"delete_option": map[string]any{"propagationPolicy": "Orphan"},
	}
}

// configMapBundle applies ConfigMap ns/name with data v=value and reports
// .data.v back as feedback "v".
func configMapBundle(consumer, bundleName, ns, name, value, strategy string) map[string]any {
	return map[string]any{
		"consumer_name": consumer,
		"name":          bundleName,
		"manifests": []any{map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"data":     map[string]any{"v": value},
		}},
		"manifest_configs": []any{map[string]any{
			"resourceIdentifier": map[string]any{"group": "", "resource": "configmaps", "name": name, "namespace": ns},
			"updateStrategy":     map[string]any{"type": strategy},
			"feedbackRules": []any{map[string]any{"type": "JSONPaths", "jsonPaths": []any{
				map[string]any{"name": "v", "path": ".data.v"}}}},
		}},
	}
}

func (c *cluster) createBundle(body map[string]any) api.ResourceBundle {
	c.t.Helper()
	var b api.ResourceBundle
	c.mustDo(http.MethodPost, "/resource-bundles", body, &b)
	return b
}

// entry returns the first resource status entry of a bundle.
func entry(b api.ResourceBundle) (api.ResourceStatus, bool) {
	if b.Status == nil || len(b.Status.ResourceStatus) == 0 {
		return api.ResourceStatus{}, false
	}
	return b.Status.ResourceStatus[0], true
}

// feedback returns the string form of a named feedback value of the first entry.
func feedback(b api.ResourceBundle, name string) (string, bool) {
	e, ok := entry(b)
	if !ok {
		return "", false
	}
	for _, v := range e.StatusFeedbacks.Values {
		if v.Name != name {
			continue
		}
		switch {
		case v.Value.String != nil:
			return *v.Value.String, true
		case v.Value.Integer != nil:
			return fmt.Sprint(*v.Value.Integer), true
		case v.Value.Boolean != nil:
			return fmt.Sprint(*v.Value.Boolean), true
		case v.Value.JsonRaw != nil:
			return *v.Value.JsonRaw, true
		}
	}
	return "", false
}

func condition(conds []metav1.Condition, typ string) (metav1.Condition, bool) {
	for _, c := range conds {
		if c.Type == typ {
			return c, true
		}
	}
	return metav1.Condition{}, false
}

// bundleCond reports whether bundle-level condition typ is True.
func bundleCond(b api.ResourceBundle, typ string) bool {
	if b.Status == nil {
		return false
	}
	c, ok := condition(b.Status.Conditions, typ)
	return ok && c.Status == metav1.ConditionTrue
}

func freshness(b api.ResourceBundle) (state, reason string) {
	if b.Status == nil || b.Status.Freshness == nil {
		return "", ""
	}
	return b.Status.Freshness.State, b.Status.Freshness.Reason
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	s := string(b)
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// sample is what REST said about the seed bundle at one moment.
type sample struct {
	at     time.Time
	ip     string
	hasIP  bool
	uid    string
	exists bool
	reason string
}

// recorder polls a bundle over REST every interval until stopped.
type recorder struct {
	stop    chan struct{}
	done    chan struct{}
	samples []sample
}

func (c *cluster) record(t *testing.T, id string, every time.Duration) *recorder {
	r := &recorder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(every):
			}
			b, _, err := c.getBundle(id)
			if err != nil {
				continue
			}
			s := sample{at: time.Now()}
			s.ip, s.hasIP = feedback(b, "ip")
			if e, ok := entry(b); ok {
				s.uid, s.exists = e.Observed.UID, e.Observed.Exists
				if cond, ok := condition(e.Conditions, api.ConditionAvailable); ok {
					s.reason = cond.Reason
				}
			}
			r.samples = append(r.samples, s)
		}
	}()
	return r
}

func (r *recorder) Stop() []sample { close(r.stop); <-r.done; return r.samples }

func (s sample) String() string {
	return fmt.Sprintf("%s ip=%q(%v) uid=%s exists=%v reason=%s", s.at.Format("15:04:05.000"), s.ip, s.hasIP, s.uid, s.exists, s.reason)
}

func describeSamples(ss []sample) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// poll calls take every interval on a goroutine of its own, keeping what
// it returns with true, until stop is called; stop returns the samples.
func poll[T any](every time.Duration, take func() (T, bool)) (stop func() []T) {
	var out []T
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
			if v, ok := take(); ok {
				out = append(out, v)
			}
		}
	}()
	return func() []T { close(quit); <-done; return out }
}
