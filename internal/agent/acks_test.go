package agent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-dev/baton/internal/protocol"
)

// TestReceiveLoopNeverWaitsOnTheLink: the server end stops reading, as a
// server blocked on its own sends does. The agent must still take every
// message the server sends — here specs of bundles it does not hold, each
// owing a Gone ack — or the two would wait on each other forever. Once the
// server reads again, every ack arrives.
func TestReceiveLoopNeverWaitsOnTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(cfg)
	ns := fmt.Sprintf("acks-%d-%d", time.Now().Unix()%100000, seq.Add(1))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pipe := protocol.NewPipe(4)
	a, err := New(cfg, pipe.Agent(), Options{Consumer: "consumer-" + ns, RecordsNamespace: ns,
		Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- a.Start(actx) }()
	defer stopAgent(t, acancel, errc)

	srv := pipe.Server()
	const n = 50
	for i := range n {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		err := srv.Send(sctx, protocol.Message{Type: protocol.TypeSpec,
			Spec: &protocol.Spec{BundleID: fmt.Sprintf("gone-%d", i), Generation: 1, Deleting: true}})
		scancel()
		if err != nil {
			t.Fatalf("spec %d of %d: the agent stopped taking messages while the server does not read: %v", i, n, err)
		}
	}
	acked := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(acked) < n {
		select {
		case m := <-srv.Recv():
			if m.Type == protocol.TypeSpecAck && m.SpecAck != nil && m.SpecAck.Gone && m.SpecAck.Generation == 1 {
				acked[m.SpecAck.BundleID] = true
			}
		case <-deadline:
			t.Fatalf("%d of %d Gone acks within 10s", len(acked), n)
		}
	}
}
