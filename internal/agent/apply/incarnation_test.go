package apply

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// TestRecordWithoutIncarnation: a record written before incarnations were
// recorded decodes with an empty one, and a record keeps its incarnation.
func TestRecordWithoutIncarnation(t *testing.T) {
	r := &Record{BundleID: "b1", Generation: 5, Incarnation: "7c4d1b2e-9a3f-4e6b-8c5d-2f1e0a9b8c7d"}
	sec, err := encodeRecord(r, "ns", "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(sec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Incarnation != r.Incarnation || got.Generation != 5 {
		t.Fatalf("round trip: got %s@%d; want %s@5", got.Incarnation, got.Generation, r.Incarnation)
	}

	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "baton-b1"}, Data: map[string][]byte{
		keyBundle: []byte(`{"bundleID":"b1","generation":5}`), keyObjects: []byte(`[]`), keySpec: sec.Data[keySpec]}}
	got, err = decodeRecord(old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Incarnation != "" || got.Generation != 5 {
		t.Fatalf("old record: got %q@%d; want \"\"@5", got.Incarnation, got.Generation)
	}
}

// TestStaleOnlyWithinIncarnation: an older generation is stale only in the
// incarnation of the record; a generation of another incarnation (or of a
// record without one) is applied and recorded with its incarnation.
func TestStaleOnlyWithinIncarnation(t *testing.T) {
	e := newEnv(t, Options{})
	// An old record, written without an incarnation.
	e.apply("b", 5, spec(e.manifest("configmap.yaml", nil)))
	apply := func(v Version, value string) error {
		_, err := e.a.ApplyVersion(e.ctx, "b", v, api.ObjectMeta{Name: "b"}, spec(e.manifest("configmap.yaml", map[string]string{"Value": value})))
		return err
	}
	if err := apply(Version{Incarnation: "A", Generation: 5}, "a5"); err != nil {
		t.Fatalf("generation 5 of A over a record without incarnation: %v", err)
	}
	if r := e.record("b"); r == nil || r.Incarnation != "A" || r.Generation != 5 {
		t.Fatalf("record after A@5: got %+v; want A@5", r)
	}
	if err := apply(Version{Incarnation: "A", Generation: 4}, "a4"); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("A@4 over A@5: got %v; want ErrStaleGeneration", err)
	}
	if got := e.configMap("app").Data["key"]; got != "a5" {
		t.Fatalf("stale apply changed the object: data.key=%q; want a5", got)
	}
	if err := apply(Version{Incarnation: "B", Generation: 1}, "b1"); err != nil {
		t.Fatalf("B@1 over A@5: %v", err)
	}
	if got := e.configMap("app").Data["key"]; got != "b1" {
		t.Fatalf("B@1 not applied: data.key=%q; want b1", got)
	}
	if r := e.record("b"); r == nil || r.Incarnation != "B" || r.Generation != 1 {
		t.Fatalf("record after B@1: got %+v; want B@1", r)
	}
	if err := apply(Version{Incarnation: "B", Generation: 3}, "b3"); err != nil {
		t.Fatalf("B@3 over B@1: %v", err)
	}
	if _, _, err := e.a.DeleteVersion(e.ctx, "b", Version{Incarnation: "B", Generation: 2}, nil); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("deletion B@2 over B@3: got %v; want ErrStaleGeneration", err)
	}
	if _, done, err := e.a.DeleteVersion(e.ctx, "b", Version{Incarnation: "C", Generation: 1}, nil); err != nil || !done {
		t.Fatalf("deletion C@1 over B@3: done=%v err=%v; want done", done, err)
	}
	if e.record("b") != nil {
		t.Fatal("record still there after the deletion finished")
	}
}
