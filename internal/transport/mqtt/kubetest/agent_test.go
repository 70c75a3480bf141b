package kubetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baton-dev/baton/internal/agent"
	"github.com/baton-dev/baton/internal/hub"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/internal/transport/mqtt"
	"github.com/baton-dev/baton/pkg/api"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

func broker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("BATON_TEST_MQTT")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	u, err := mqtt.ParseBroker(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatalf("no MQTT broker at %s (set BATON_TEST_MQTT): %v", u.Host, err)
	}
	c.Close()
	return u.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real agent, connected only through the broker, applies a bundle the
// hub delivers, reports the live object, and re-reports it once it is
// deleted behind its back (and applied again).
func TestRealAgentThroughBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	brokerURL, source := broker(t), fmt.Sprintf("kube-%016x", rand.Uint64())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st := storetest.NewSQLite(t)
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: "kube-1"}); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(st, hub.WithLogger(log), hub.WithRegisterer(prometheus.NewRegistry()),
		hub.WithPollInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mqtt.NewServer(mqtt.ServerConfig{Broker: brokerURL, Source: source, Agents: h,
		Options: mqtt.Options{Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = h.Start(ctx); done <- struct{}{} }()
	go func() { _ = srv.Start(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	conn, err := mqtt.Dial(ctx, brokerURL, source, "kube-1", mqtt.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, conn, agent.Options{Consumer: "kube-1", RecordsNamespace: "baton-mqtt-records",
		HeartbeatInterval: time.Second, DeletePropagation: metav1.DeletePropagationBackground, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Start(ctx) }()

	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"via-mqtt","namespace":"default"},"data":{"k":"v"}}`
	if _, err := st.CreateBundle(ctx, store.Bundle{ID: "b-mqtt", ConsumerName: "kube-1",
		Spec: api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(cm)}}}); err != nil {
		t.Fatal(err)
	}
	h.Notify("kube-1")

	kc := kubernetes.NewForConfigOrDie(cfg)
	var uid string
	eventually(t, "the ConfigMap exists", func() bool {
		obj, err := kc.CoreV1().ConfigMaps("default").Get(ctx, "via-mqtt", metav1.GetOptions{})
		if err == nil {
			uid = string(obj.UID)
		}
		return err == nil
	})
	observed := func() (api.Observed, bool) {
		b, err := st.GetBundle(ctx, "b-mqtt")
		if err != nil || b.Status.ObservedGeneration != 1 || len(b.Status.Reported.ResourceStatus) != 1 {
			return api.Observed{}, false
		}
		return b.Status.Reported.ResourceStatus[0].Observed, true
	}
	eventually(t, "the stored status names the live ConfigMap", func() bool {
		o, ok := observed()
		return ok && o.Exists && o.UID == uid
	})
	eventually(t, "the outbox is empty (spec acknowledged)", func() bool {
		ev, err := st.PendingOutbox(ctx, "kube-1", 10)
		return err == nil && len(ev) == 0
	})

	// Deleted behind the agent's back: re-applied, and the new object reported.
	if err := kc.CoreV1().ConfigMaps("default").Delete(ctx, "via-mqtt", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	eventually(t, "the stored status names the recreated ConfigMap", func() bool {
		o, ok := observed()
		return ok && o.Exists && o.UID != "" && o.UID != uid
	})
}
