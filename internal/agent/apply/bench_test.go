package apply

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
)

// BenchmarkApplyUnchanged measures a repeated Apply of a 20-object bundle
// that already matches the cluster: one GET per object and no writes.
func BenchmarkApplyUnchanged(b *testing.B) {
	e := newEnv(b, Options{})
	var ms []json.RawMessage
	for i := range 20 {
		ms = append(ms, e.manifest("configmap.yaml", map[string]string{"Name": fmt.Sprintf("cm-%d", i)}))
	}
	s := spec(ms...)
	e.apply("bench", 1, s)
	for b.Loop() {
		r, err := e.a.Apply(e.ctx, "bench", 1, api.ObjectMeta{Name: "bench"}, s)
		if err != nil || r.Err() != nil {
			b.Fatal(err, r.Err())
		}
		for _, o := range r.Objects {
			if o.Outcome != Unchanged {
				b.Fatalf("%s: %s", o.Name, o.Outcome)
			}
		}
	}
}
