package grpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/pkg/api"
)

// manifestWorks is the resource sdk-go clients name in their errors.
var manifestWorks = schema.GroupResource{Group: "work.open-cluster-management.io", Resource: "manifestworks"}

// write applies a source's spec request to the store and wakes the
// consumer's dispatcher.
func (s *sourceService) write(ctx context.Context, r ce.SpecRequest) error {
	name := r.Meta.Name
	if name == "" {
		name = r.BundleID
	}
	var (
		b   store.Bundle
		err error
	)
	switch r.Action {
	case ce.ActionCreate:
		b, err = s.create(ctx, r)
	case ce.ActionUpdate:
		b, err = s.update(ctx, r)
	case ce.ActionDelete:
		b, err = s.delete(ctx, r)
	}
	if err != nil {
		return toStatus(err, name)
	}
	if b.ConsumerName != "" {
		s.s.cfg.Notify(b.ConsumerName)
	}
	return nil
}

func (s *sourceService) bundle(r ce.SpecRequest) store.Bundle {
	// The metadata timestamps are server-set (from created_at, deleted_at).
	return store.Bundle{ID: r.BundleID, Name: r.BundleID, ConsumerName: r.Consumer, Source: r.Source,
		Meta: r.Meta.WithTimestamps(time.Time{}, nil), Spec: r.Spec}
}

func (s *sourceService) validate(b store.Bundle) error {
	if s.s.cfg.Validate == nil {
		return nil
	}
	rb := &api.ResourceBundle{ID: b.ID, Kind: api.KindResourceBundle, Name: b.Name, ConsumerName: b.ConsumerName,
		Source: b.Source, Metadata: b.Meta, Manifests: b.Spec.Manifests, ManifestConfigs: b.Spec.ManifestConfigs,
		DeleteOption: b.Spec.DeleteOption, Executor: b.Spec.Executor}
	if err := s.s.cfg.Validate(rb); err != nil {
		return &invalidError{err}
	}
	return nil
}

func (s *sourceService) create(ctx context.Context, r ce.SpecRequest) (store.Bundle, error) {
	if r.Consumer == "" {
		return store.Bundle{}, &invalidError{errors.New("clustername extension is required")}
	}
	b := s.bundle(r)
	if err := s.validate(b); err != nil {
		return b, err
	}
	out, err := s.s.cfg.Bundles.CreateBundle(ctx, b)
	if errors.Is(err, store.ErrNotFound) {
		return b, &invalidError{fmt.Errorf("consumer %q: %w", r.Consumer, err)}
	}
	if errors.Is(err, store.ErrConflict) {
		if cur, gerr := s.s.cfg.Bundles.GetBundle(ctx, b.ID); gerr == nil && cur.DeletedAt != nil {
			// Not "already exists": the old bundle is on its way out.
			return b, fmt.Errorf("resource bundle %s (consumer %s) is still being deleted since %s; it can be created "+
				"again once its agent confirms the removal. Wait, or finalize it without the agent (its objects stay "+
				"in the cluster): DELETE %s/resource-bundles/%s?orphan=true: %w",
				b.ID, b.ConsumerName, cur.DeletedAt.UTC().Format(time.RFC3339), api.BasePath, b.ID, store.ErrConflict)
		}
		return b, &existsError{err}
	}
	return out, err
}

// owned loads a bundle and checks the request's source may change it.
func (s *sourceService) owned(ctx context.Context, r ce.SpecRequest) (store.Bundle, error) {
	cur, err := s.s.cfg.Bundles.GetBundle(ctx, r.BundleID)
	if err != nil {
		return cur, err
	}
	if cur.Source != "" && cur.Source != r.Source {
		return cur, &forbiddenError{fmt.Errorf("bundle %s belongs to source %q", r.BundleID, cur.Source)}
	}
	if r.Consumer != "" && cur.ConsumerName != r.Consumer {
		return cur, &invalidError{fmt.Errorf("bundle %s belongs to consumer %q, not %q", r.BundleID, cur.ConsumerName, r.Consumer)}
	}
	return cur, nil
}

func (s *sourceService) update(ctx context.Context, r ce.SpecRequest) (store.Bundle, error) {
	cur, err := s.owned(ctx, r)
	if err != nil {
		return cur, err
	}
	b := s.bundle(r)
	b.ConsumerName, b.Name, b.Source = cur.ConsumerName, cur.Name, cur.Source
	if err := s.validate(b); err != nil {
		return b, err
	}
	return s.s.cfg.Bundles.UpdateBundle(ctx, b, r.Version)
}

func (s *sourceService) delete(ctx context.Context, r ce.SpecRequest) (store.Bundle, error) {
	_, err := s.owned(ctx, r)
	if errors.Is(err, store.ErrNotFound) {
		// Already gone: tell the client so its delete completes.
		for _, sub := range s.subscribers(r.Source, r.Consumer) {
			if err := s.sendDeleted(ctx, sub, r.BundleID, r.Consumer, nil); err != nil {
				return store.Bundle{}, err
			}
		}
		return store.Bundle{}, nil
	}
	if err != nil {
		return store.Bundle{}, err
	}
	return s.s.cfg.Bundles.DeleteBundle(ctx, r.BundleID)
}

type invalidError struct{ error }
type existsError struct{ error }
type forbiddenError struct{ error }

func (e *invalidError) Unwrap() error   { return e.error }
func (e *existsError) Unwrap() error    { return e.error }
func (e *forbiddenError) Unwrap() error { return e.error }

// toStatus maps a write error to a gRPC status whose message is a
// Kubernetes StatusError in JSON, which sdk-go clients decode and return to
// their callers. Internal errors keep a plain message: clients treat those
// as retryable publish errors.
func toStatus(err error, name string) error {
	var (
		inv  *invalidError
		ex   *existsError
		forb *forbiddenError
	)
	switch {
	case errors.As(err, &inv), errors.Is(err, store.ErrInvalid):
		return k8sStatus(codes.InvalidArgument, apierrors.NewBadRequest(err.Error()))
	case errors.As(err, &ex):
		return k8sStatus(codes.AlreadyExists, apierrors.NewAlreadyExists(manifestWorks, name))
	case errors.As(err, &forb):
		return k8sStatus(codes.PermissionDenied, apierrors.NewForbidden(manifestWorks, name, err))
	case errors.Is(err, store.ErrNotFound):
		return k8sStatus(codes.NotFound, apierrors.NewNotFound(manifestWorks, name))
	case errors.Is(err, store.ErrConflict):
		return k8sStatus(codes.Aborted, apierrors.NewConflict(manifestWorks, name, err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Errorf(codes.Internal, "bundle %s: %v", name, err)
}

func k8sStatus(code codes.Code, se *apierrors.StatusError) error {
	b, err := json.Marshal(se)
	if err != nil {
		return status.Error(code, se.Error())
	}
	return status.Error(code, string(b))
}
