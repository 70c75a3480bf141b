package apply

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
	workv1 "open-cluster-management.io/api/work/v1"
)

func TestRecordRoundTrip(t *testing.T) {
	r := &Record{
		BundleID: "b1", Generation: 9, Deleting: true,
		DeleteOption: &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan},
		Meta:         api.ObjectMeta{Name: "work", Labels: map[string]string{"a": "b"}},
		Spec: api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
			ManifestConfigs: []workv1.ManifestConfigOption{{ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: "*", Namespace: "*"}}}},
		Objects: []RecordedObject{{Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "n", Name: "a", UID: "u", Owned: true, Strategy: "Update"}},
	}
	sec, err := encodeRecord(r, "ns", "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Name != "baton-b1" || sec.Namespace != "ns" || sec.Type != SecretType || sec.Labels[LabelAgent] != "agent-1" || sec.Labels[LabelRecord] != "bundle" {
		t.Fatalf("record secret: name=%s ns=%s type=%s labels=%v", sec.Name, sec.Namespace, sec.Type, sec.Labels)
	}
	got, err := decodeRecord(sec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, r)
	}
}

func TestRecordSizeLimit(t *testing.T) {
	manifest := func(n int) json.RawMessage {
		b := make([]byte, n)
		_, _ = rand.Read(b) // incompressible payload
		return json.RawMessage(fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","data":{"k":%q}}`, base64.StdEncoding.EncodeToString(b)))
	}
	// A bundle at the 500 KiB limit, incompressible, fits.
	ok := &Record{BundleID: "b", Spec: api.BundleSpec{Manifests: []json.RawMessage{manifest(370 << 10)}}}
	if n := len(ok.Spec.Manifests[0]); n < 490<<10 || n > 500<<10 {
		t.Fatalf("test manifest is %d bytes; want about 500 KiB", n)
	}
	if _, err := encodeRecord(ok, "ns", "a"); err != nil {
		t.Fatalf("500 KiB bundle: %v", err)
	}
	big := &Record{BundleID: "b", Spec: api.BundleSpec{Manifests: []json.RawMessage{manifest(1400 << 10)}}}
	if _, err := encodeRecord(big, "ns", "a"); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized record: got %v; want size error", err)
	}
}

func TestRecordName(t *testing.T) {
	if got := recordName("5d2a0c5e-3c5b-4a5f-9f7e-0c6f5a1b2c3d"); got != "baton-5d2a0c5e-3c5b-4a5f-9f7e-0c6f5a1b2c3d" {
		t.Fatalf("uuid id: got %s", got)
	}
	for _, id := range []string{"Upper_Case", strings.Repeat("x", 300), "a/b"} {
		got := recordName(id)
		if len(got) != len("baton-")+32 || !strings.HasPrefix(got, "baton-") {
			t.Fatalf("id %q: got %s; want baton-<hash>", id, got)
		}
	}
	if recordName("A") == recordName("B") {
		t.Fatal("different ids share a record name")
	}
	if got := agentLabel("consumer-1"); got != "consumer-1" {
		t.Fatalf("agent label: got %s", got)
	}
	if got := agentLabel(strings.Repeat("c", 70)); len(got) != 32 {
		t.Fatalf("long agent label: got %s", got)
	}
}
