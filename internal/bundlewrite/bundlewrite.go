// Package bundlewrite is the one write path of resource bundles. REST
// (POST, PUT, PATCH, DELETE /resource-bundles) and the gRPC source port
// (CloudEvents create, update, delete requests) both hand their bundle to a
// Writer, so the defaults, the server-set fields, the validation against
// the transport agents are served on, the store errors and the wake-up of
// the consumer's delivery are the same whichever way a bundle arrives.
//
// Callers decode their wire format, authorize the caller, and map the
// errors below onto their own status codes and texts.
package bundlewrite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/validate/content"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// Store is the part of the store a Writer uses. Errors wrap
// store.ErrNotFound and store.ErrConflict.
type Store interface {
	CreateBundle(ctx context.Context, b store.Bundle) (store.Bundle, error)
	UpdateBundle(ctx context.Context, b store.Bundle, expectedGeneration int64) (store.Bundle, error)
	DeleteBundle(ctx context.Context, id string) (store.Bundle, error)
	GetBundle(ctx context.Context, id string) (store.Bundle, error)
}

// Writer creates, changes and deletes bundles.
type Writer struct {
	Store Store
	// Transport returns the most restrictive transport agents are served
	// on, read at every write (an extension applied later may lower it); a
	// bundle whose spec message it cannot carry is refused. nil is gRPC.
	Transport func() limits.Transport
	// Notify, when set, is called with the consumer after every accepted
	// write, so delivery starts at once instead of at the next poll.
	Notify func(consumer string)
}

// ErrNoConsumer is the error of a create for a consumer that does not
// exist; it wraps store.ErrNotFound.
var ErrNoConsumer = fmt.Errorf("no such consumer: %w", store.ErrNotFound)

// ExistsError is the error of a create whose id is taken by a live bundle.
// It wraps store.ErrConflict.
type ExistsError struct{ Current store.Bundle }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("resource bundle %s already exists", e.Current.ID)
}
func (e *ExistsError) Unwrap() error { return store.ErrConflict }

// DeletingError is the error of a create or change of a bundle that is
// marked deleting and waits for its agent. It wraps store.ErrConflict.
type DeletingError struct{ Current store.Bundle }

func (e *DeletingError) Error() string {
	return fmt.Sprintf("resource bundle %s is still being deleted since %s", e.Current.ID,
		e.Current.DeletedAt.UTC().Format(time.RFC3339))
}
func (e *DeletingError) Unwrap() error { return store.ErrConflict }

// Create stores a new bundle. ID, Name, ConsumerName, Source, Meta and
// Spec are the caller's; metadata.namespace defaults to the consumer name
// when that is a valid namespace, and the server-set metadata (timestamps,
// uid, resourceVersion) is cleared. Errors: validate.Errors, ErrNoConsumer,
// *ExistsError, *DeletingError, or the store's.
func (w *Writer) Create(ctx context.Context, b store.Bundle) (store.Bundle, error) {
	if err := w.Check(&b); err != nil {
		return store.Bundle{}, err
	}
	out, err := w.Store.CreateBundle(ctx, b)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Bundle{}, fmt.Errorf("consumer %q: %w", b.ConsumerName, ErrNoConsumer)
	case errors.Is(err, store.ErrConflict):
		cur, gerr := w.Store.GetBundle(ctx, b.ID)
		if gerr != nil {
			return store.Bundle{}, err
		}
		if cur.DeletedAt != nil {
			return store.Bundle{}, &DeletingError{cur}
		}
		return store.Bundle{}, &ExistsError{cur}
	case err != nil:
		return store.Bundle{}, err
	}
	w.notify(out.ConsumerName)
	return out, nil
}

// Update replaces the metadata and spec of cur with those of b, if the
// stored version is still expected (0: whatever is current; a version as
// clients see it, store.Bundle.Version). The
// identity of the bundle (id, consumer_name, name, source, metadata.name)
// cannot change: empty members of b mean unchanged, others must equal
// cur's. An empty metadata.namespace keeps cur's. Errors: validate.Errors,
// *DeletingError, a version conflict wrapping store.ErrConflict, or the
// store's.
func (w *Writer) Update(ctx context.Context, cur store.Bundle, b store.Bundle, expected int64) (store.Bundle, error) {
	if cur.DeletedAt != nil {
		return store.Bundle{}, &DeletingError{cur}
	}
	if err := keepIdentity(&cur, &b); err != nil {
		return store.Bundle{}, err
	}
	serverSet(&b, cur.Meta.Namespace)
	if err := w.validate(&b); err != nil {
		return store.Bundle{}, err
	}
	out, err := w.Store.UpdateBundle(ctx, b, cur.GenerationOf(expected))
	if errors.Is(err, store.ErrConflict) {
		if again, gerr := w.Store.GetBundle(ctx, cur.ID); gerr == nil && again.DeletedAt != nil {
			return store.Bundle{}, &DeletingError{again}
		}
	}
	if err != nil {
		return store.Bundle{}, err
	}
	w.notify(out.ConsumerName)
	return out, nil
}

// Delete marks the bundle deleting; its agent removes the objects and the
// row goes once it confirms. Deleting a bundle already marked is a no-op.
func (w *Writer) Delete(ctx context.Context, id string) (store.Bundle, error) {
	b, err := w.Store.DeleteBundle(ctx, id)
	if err != nil {
		return store.Bundle{}, err
	}
	w.notify(b.ConsumerName)
	return b, nil
}

// Check applies the create defaults to b, clears its server-set members
// and validates it, as Create does before it writes.
func (w *Writer) Check(b *store.Bundle) error {
	serverSet(b, "")
	return w.validate(b)
}

func (w *Writer) notify(consumer string) {
	if w.Notify != nil && consumer != "" {
		w.Notify(consumer)
	}
}

func (w *Writer) validate(b *store.Bundle) error {
	t := limits.GRPC
	if w.Transport != nil {
		if v := w.Transport(); v != "" {
			t = v
		}
	}
	return validate.Bundle(&api.ResourceBundle{ID: b.ID, Kind: api.KindResourceBundle, Name: b.Name,
		ConsumerName: b.ConsumerName, Source: b.Source, Metadata: b.Meta, Manifests: b.Spec.Manifests,
		ManifestConfigs: b.Spec.ManifestConfigs, DeleteOption: b.Spec.DeleteOption, Executor: b.Spec.Executor}, t)
}

// serverSet clears what only the server sets and fills the namespace
// default: namespace, else the consumer name when it is a valid namespace.
func serverSet(b *store.Bundle, namespace string) {
	if b.Meta.Namespace == "" {
		b.Meta.Namespace = namespace
	}
	if b.Meta.Namespace == "" && len(content.IsDNS1123Label(b.ConsumerName)) == 0 {
		b.Meta.Namespace = b.ConsumerName
	}
	b.Meta = b.Meta.WithTimestamps(time.Time{}, nil) // from created_at, deleted_at
	b.Meta.UID, b.Meta.ResourceVersion = "", ""
	b.Generation, b.CreatedAt, b.UpdatedAt, b.DeletedAt, b.ChangeSeq = 0, time.Time{}, time.Time{}, nil, 0
	b.Status = store.Status{}
}

// keepIdentity fills b's identity from cur and refuses changes to it.
func keepIdentity(cur, b *store.Bundle) error {
	var es validate.Errors
	keep := func(field string, got *string, want string) {
		if *got != "" && *got != want {
			es = append(es, &validate.FieldError{Field: field, Msg: fmt.Sprintf("cannot change (%q, not %q)", want, *got)})
		}
		*got = want
	}
	keep("id", &b.ID, cur.ID)
	keep("consumer_name", &b.ConsumerName, cur.ConsumerName)
	keep("name", &b.Name, cur.Name)
	keep("source", &b.Source, cur.Source)
	keep("metadata.name", &b.Meta.Name, cur.Meta.Name)
	return es.Err()
}
