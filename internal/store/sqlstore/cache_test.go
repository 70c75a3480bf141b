package sqlstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
)

func TestJSONCacheBounded(t *testing.T) {
	const limit = 64 << 10
	c := newJSONCache(limit, copyMeta)
	for i := range 2000 {
		want := api.ObjectMeta{Name: fmt.Sprintf("n%d", i), Labels: map[string]string{"i": fmt.Sprint(i)}}
		raw, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a miss, then (usually) a hit
			var got api.ObjectMeta
			if err := c.decode(raw, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decode(%s) = %+v; want %+v", raw, got, want)
			}
		}
		if c.size > limit {
			t.Fatalf("cache holds %d bytes; limit %d", c.size, limit)
		}
	}
	if len(c.m) == 0 || len(c.m) >= 2000 {
		t.Fatalf("cache has %d entries; want some, evicted to the limit", len(c.m))
	}
	if err := c.decode([]byte("{"), new(api.ObjectMeta)); err == nil {
		t.Fatal("decoding invalid JSON succeeded")
	}
	off := newJSONCache(-1, copyMeta)
	var got api.ObjectMeta
	if err := off.decode([]byte(`{"name":"x"}`), &got); err != nil || got.Name != "x" || len(off.m) != 0 {
		t.Fatalf("disabled cache: %+v, %v, %d entries", got, err, len(off.m))
	}
}

// TestCopiesKnowEveryField fails when a cached type gains a field, so the
// copy functions are reviewed: a new slice, map or pointer field must be
// copied deeply, or cached values would leak to callers.
func TestCopiesKnowEveryField(t *testing.T) {
	for typ, want := range map[reflect.Type]int{
		reflect.TypeFor[api.ObjectMeta]():     8,
		reflect.TypeFor[api.BundleSpec]():     4,
		reflect.TypeFor[api.ReportedStatus](): 2,
		reflect.TypeFor[api.ResourceStatus](): 4,
		reflect.TypeFor[api.Observed]():       5,
	} {
		if got := typ.NumField(); got != want {
			t.Errorf("%s has %d fields, the copy functions in cache.go know %d: update them and this test", typ, got, want)
		}
	}
}
