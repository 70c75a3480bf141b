package bundlewrite_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

func newWriter(t *testing.T) (*bundlewrite.Writer, *sqlstore.Store, *[]string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, name := range []string{"c1", "cluster.example.com"} {
		if _, err := st.CreateConsumer(ctx, store.Consumer{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	var notified []string
	w := &bundlewrite.Writer{Store: st, Notify: func(c string) { notified = append(notified, c) }}
	return w, st, &notified
}

func configMap(name, data string) api.BundleSpec {
	return api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"n"},"data":{"k":"` + data + `"}}`)}}
}

func TestCreateDefaultsAndErrors(t *testing.T) {
	w, _, notified := newWriter(t)
	ctx := context.Background()
	in := store.Bundle{ID: "b1", Name: "b1", ConsumerName: "c1", Source: "s", Spec: configMap("x", "1"),
		Meta: api.ObjectMeta{Name: "work", UID: "client-set", ResourceVersion: "7"}}
	out, err := w.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Meta.Namespace != "c1" || out.Meta.UID != "b1" || out.Generation != 1 {
		t.Errorf("created %+v; want namespace c1 (the consumer), uid = id, generation 1", out.Meta)
	}
	if len(*notified) != 1 || (*notified)[0] != "c1" {
		t.Errorf("notified %v; want [c1]", *notified)
	}

	// A consumer name that is not a namespace gives no default.
	odd, err := w.Create(ctx, store.Bundle{ID: "b2", Name: "b2", ConsumerName: "cluster.example.com", Spec: configMap("x", "1")})
	if err != nil || odd.Meta.Namespace != "" {
		t.Errorf("create for a subdomain: namespace %q, %v; want none", odd.Meta.Namespace, err)
	}

	var ex *bundlewrite.ExistsError
	if _, err := w.Create(ctx, in); !errors.As(err, &ex) || ex.Current.ID != "b1" || !errors.Is(err, store.ErrConflict) {
		t.Errorf("second create = %v; want ExistsError wrapping ErrConflict", err)
	}
	in.ID, in.ConsumerName = "b3", "nobody"
	if _, err := w.Create(ctx, in); !errors.Is(err, bundlewrite.ErrNoConsumer) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("create for a missing consumer = %v; want ErrNoConsumer", err)
	}
	var ve validate.Errors
	if _, err := w.Create(ctx, store.Bundle{ID: "b4", ConsumerName: "c1"}); !errors.As(err, &ve) {
		t.Errorf("create without manifests = %v; want validate.Errors", err)
	}
	if len(*notified) != 2 { // c1, cluster.example.com
		t.Errorf("refused writes notified: %v", *notified)
	}
}

func TestTransportLimitReadAtEachWrite(t *testing.T) {
	w, st, _ := newWriter(t)
	transport := limits.GRPC
	w.Transport = func() limits.Transport { return transport }
	big := configMap("x", strings.Repeat("x", limits.BundleSpecBytes-4000))
	notes := api.ObjectMeta{Annotations: map[string]string{"example.com/notes": strings.Repeat("n", 200<<10)}}
	if _, err := w.Create(context.Background(), store.Bundle{ID: "big", Name: "big", ConsumerName: "c1", Meta: notes, Spec: big}); err != nil {
		t.Fatalf("700 KiB message over gRPC: %v", err)
	}
	transport = limits.MQTT
	_, err := w.Create(context.Background(), store.Bundle{ID: "big2", Name: "big2", ConsumerName: "c1", Meta: notes, Spec: big})
	if err == nil || !strings.Contains(err.Error(), "512 KiB") {
		t.Fatalf("700 KiB message over MQTT = %v; want refused naming 512 KiB", err)
	}
	if _, err := st.GetBundle(context.Background(), "big2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused bundle stored: %v", err)
	}
}

func TestUpdateKeepsIdentity(t *testing.T) {
	w, _, _ := newWriter(t)
	ctx := context.Background()
	cur, err := w.Create(ctx, store.Bundle{ID: "b1", Name: "b1", ConsumerName: "c1", Source: "s",
		Meta: api.ObjectMeta{Name: "work", Namespace: "ns"}, Spec: configMap("x", "1")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.Update(ctx, cur, store.Bundle{Spec: configMap("x", "2")}, cur.Generation)
	if err != nil || out.Generation != 2 || out.Meta.Namespace != "ns" || out.Source != "s" || out.Meta.Name != "work" {
		t.Fatalf("update = %+v, %v; want generation 2 with the identity and namespace kept", out, err)
	}
	var ve validate.Errors
	if _, err := w.Update(ctx, out, store.Bundle{Source: "other", Spec: configMap("x", "3")}, 0); !errors.As(err, &ve) ||
		!strings.Contains(err.Error(), "source") {
		t.Errorf("source change = %v; want a field error naming source", err)
	}
	if _, err := w.Update(ctx, out, store.Bundle{Spec: configMap("x", "3")}, 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale version = %v; want ErrConflict", err)
	}

	if _, err := w.Delete(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	var del *bundlewrite.DeletingError
	if _, err := w.Update(ctx, out, store.Bundle{Spec: configMap("x", "4")}, 0); !errors.As(err, &del) {
		t.Errorf("update of a deleting bundle (stale copy) = %v; want DeletingError", err)
	}
	if _, err := w.Create(ctx, store.Bundle{ID: "b1", Name: "b1", ConsumerName: "c1", Spec: configMap("x", "5")}); !errors.As(err, &del) {
		t.Errorf("create over a deleting bundle = %v; want DeletingError", err)
	}
}
