package apply

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/baton-dev/baton/pkg/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Labels, type and keys of record Secrets.
const (
	SecretType    = "baton.dev/bundle-record"
	LabelRecord   = "baton.dev/record" // "bundle" on every record
	LabelAgent    = "baton.dev/agent"  // the agent (consumer) that wrote it
	LabelManaged  = "app.kubernetes.io/managed-by"
	keyBundle     = "bundle"       // JSON header: id, generation, incarnation, deleting
	keyObjects    = "objects"      // JSON []RecordedObject
	keySpec       = "spec.json.gz" // gzip JSON {meta, spec}
	maxRecordSize = 1<<20 - 16<<10 // Secret data limit (1 MiB) minus headroom
)

// Record is the durable account, kept in a Secret of the records
// namespace (a Secret because bundles carry Secrets), of a bundle the agent holds: the generation and spec it last
// took, and every object it applied with its uid. An agent restarted with
// no memory rebuilds its list of held bundles from Records and can finish
// or redo a deletion from it.
type Record struct {
	BundleID   string `json:"bundleID"`
	Generation int64  `json:"generation"`
	// Incarnation is the generation space Generation belongs to (the
	// server's Spec.Incarnation); empty in records written before it was
	// recorded, and when the server sends none.
	Incarnation string `json:"incarnation,omitempty"`
	// Deleting: Delete was called; the bundle is being removed.
	Deleting bool `json:"deleting,omitempty"`
	// DeleteOption is the option of the pending Delete, if any.
	DeleteOption *workv1.DeleteOption `json:"deleteOption,omitempty"`
	Meta         api.ObjectMeta       `json:"-"`
	Spec         api.BundleSpec       `json:"-"`
	Objects      []RecordedObject     `json:"-"`

	resourceVersion string // of the Secret; empty until stored
}

// RecordedObject is one object a bundle applied or read.
type RecordedObject struct {
	Group     string                    `json:"group,omitempty"`
	Version   string                    `json:"version"`
	Kind      string                    `json:"kind"`
	Resource  string                    `json:"resource"`
	Namespace string                    `json:"namespace,omitempty"`
	Name      string                    `json:"name"`
	UID       types.UID                 `json:"uid"`
	Strategy  workv1.UpdateStrategyType `json:"strategy,omitempty"`
	// Owned: the bundle created the object (with this uid) and deletes it.
	Owned bool `json:"owned,omitempty"`
	// Ordinal is the manifest's index in the recorded spec; -1 once the
	// object left the bundle.
	Ordinal int `json:"ordinal"`
	// Removing: the object left the bundle and its deletion is pending.
	Removing bool `json:"removing,omitempty"`
}

func (o RecordedObject) key() objectKey {
	return objectKey{Group: o.Group, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

func (o RecordedObject) identity() identity {
	return identity{Group: o.Group, Resource: o.Resource, Namespace: o.Namespace, Name: o.Name}
}

func (o RecordedObject) id() string { return objectID(o.Kind, o.Namespace, o.Name) }

// clone returns a deep enough copy to mutate Objects and flags.
func (r *Record) clone() *Record {
	c := *r
	c.Objects = slices.Clone(r.Objects)
	return &c
}

// recordName is the Secret name of a bundle's record.
func recordName(bundleID string) string {
	name := "baton-" + bundleID
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(bundleID))
	return "baton-" + hex.EncodeToString(sum[:16])
}

// agentLabel is the agent name as a label value.
func agentLabel(agent string) string {
	if len(validation.IsValidLabelValue(agent)) == 0 {
		return agent
	}
	sum := sha256.Sum256([]byte(agent))
	return hex.EncodeToString(sum[:16])
}

type specDoc struct {
	Meta api.ObjectMeta `json:"meta"`
	Spec api.BundleSpec `json:"spec"`
}

// encodeRecord renders r as a Secret of namespace ns.
func encodeRecord(r *Record, ns, agent string) (*corev1.Secret, error) {
	header, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	objects, err := json.Marshal(r.Objects)
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(specDoc{Meta: r.Meta, Spec: r.Spec})
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(spec)
	if err := w.Close(); err != nil {
		return nil, err
	}
	if size := len(header) + len(objects) + gz.Len(); size > maxRecordSize {
		return nil, fmt.Errorf("record of %d bytes exceeds the Secret size limit", size)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: recordName(r.BundleID), Namespace: ns, ResourceVersion: r.resourceVersion,
			Labels: map[string]string{LabelRecord: "bundle", LabelAgent: agentLabel(agent), LabelManaged: "baton-agent"},
		},
		Type: SecretType,
		Data: map[string][]byte{keyBundle: header, keyObjects: objects, keySpec: gz.Bytes()},
	}, nil
}

// decodeRecord reads a record Secret.
func decodeRecord(sec *corev1.Secret) (*Record, error) {
	r := &Record{resourceVersion: sec.ResourceVersion}
	if err := json.Unmarshal(sec.Data[keyBundle], r); err != nil {
		return nil, fmt.Errorf("record %s: %s: %w", sec.Name, keyBundle, err)
	}
	if err := json.Unmarshal(sec.Data[keyObjects], &r.Objects); err != nil {
		return nil, fmt.Errorf("record %s: %s: %w", sec.Name, keyObjects, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(sec.Data[keySpec]))
	if err != nil {
		return nil, fmt.Errorf("record %s: %s: %w", sec.Name, keySpec, err)
	}
	var doc specDoc
	if err := json.NewDecoder(io.LimitReader(zr, 64<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("record %s: %s: %w", sec.Name, keySpec, err)
	}
	r.Meta, r.Spec = doc.Meta, doc.Spec
	return r, nil
}

// ensureNamespace creates the records namespace once.
func (a *Applier) ensureNamespace(ctx context.Context) error {
	return a.nsReady.do(func() error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.opts.Namespace}}
		_, err := a.core.Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: a.opts.FieldManager})
		// An agent whose RBAC stops at its own namespaces may not create
		// namespaces: the records namespace is then the deployment's to
		// provide, and writing a record into a missing one fails, naming it.
		if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
			return fmt.Errorf("Namespace %s: create: %w", a.opts.Namespace, err)
		}
		return nil
	})
}

// loadRecord returns the bundle's record, nil when there is none.
func (a *Applier) loadRecord(ctx context.Context, bundleID string) (*Record, error) {
	a.mu.Lock()
	r, ok := a.records[bundleID]
	a.mu.Unlock()
	if ok {
		return r.clone(), nil
	}
	name := recordName(bundleID)
	sec, err := a.core.Secrets(a.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: get record: %w", a.opts.Namespace, name, err)
	}
	if r, err = decodeRecord(sec); err != nil {
		return nil, err
	}
	a.cache(r)
	return r.clone(), nil
}

func (a *Applier) cache(r *Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r == nil {
		return
	}
	a.records[r.BundleID] = r.clone()
}

func (a *Applier) uncache(bundleID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.records, bundleID)
}

// saveRecord writes r (create or optimistic update) and caches it.
func (a *Applier) saveRecord(ctx context.Context, r *Record) error {
	if err := a.ensureNamespace(ctx); err != nil {
		return err
	}
	sec, err := encodeRecord(r, a.opts.Namespace, a.opts.AgentName)
	if err != nil {
		return &Error{Object: "Secret " + a.opts.Namespace + "/" + recordName(r.BundleID), Action: "encode record", Reason: ReasonInvalid, Terminal: true, Err: err}
	}
	client := a.core.Secrets(a.opts.Namespace)
	opts := metav1.CreateOptions{FieldManager: a.opts.FieldManager}
	if r.resourceVersion == "" {
		sec, err = client.Create(ctx, sec, opts)
	} else {
		sec, err = client.Update(ctx, sec, metav1.UpdateOptions{FieldManager: a.opts.FieldManager})
	}
	if err != nil {
		a.uncache(r.BundleID) // reload from the cluster next time
		return fmt.Errorf("Secret %s/%s: save record: %w", a.opts.Namespace, recordName(r.BundleID), err)
	}
	r.resourceVersion = sec.ResourceVersion
	a.cache(r)
	return nil
}

// dropRecord removes the bundle's record.
func (a *Applier) dropRecord(ctx context.Context, r *Record) error {
	name := recordName(r.BundleID)
	pre := metav1.Preconditions{}
	if r.resourceVersion != "" {
		pre.ResourceVersion = &r.resourceVersion
	}
	err := a.core.Secrets(a.opts.Namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &pre})
	a.uncache(r.BundleID)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("Secret %s/%s: delete record: %w", a.opts.Namespace, name, err)
	}
	return nil
}

// Records lists the record of every bundle this agent holds, sorted by
// bundle id. Records that cannot be decoded are skipped and reported in
// the joined error next to the good ones.
func (a *Applier) Records(ctx context.Context) ([]Record, error) {
	sel := LabelRecord + "=bundle," + LabelAgent + "=" + agentLabel(a.opts.AgentName)
	list, err := a.core.Secrets(a.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("Secrets %s: list records: %w", a.opts.Namespace, err)
	}
	var out []Record
	var errs []error
	for i := range list.Items {
		r, err := decodeRecord(&list.Items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(x, y Record) int { return strings.Compare(x.BundleID, y.BundleID) })
	return out, errors.Join(errs...)
}
