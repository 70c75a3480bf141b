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

	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// manifestWorks is the resource sdk-go clients name in their errors.
var manifestWorks = schema.GroupResource{Group: "work.open-cluster-management.io", Resource: "manifestworks"}

// write applies a source's spec request through the bundle writer, which
// validates it, stores it and wakes the consumer's delivery.
func (s *sourceService) write(ctx context.Context, r ce.SpecRequest) error {
	name := r.Meta.Name
	if name == "" {
		name = r.BundleID
	}
	var err error
	switch r.Action {
	case ce.ActionCreate:
		err = s.create(ctx, r)
	case ce.ActionUpdate:
		err = s.update(ctx, r)
	case ce.ActionDelete:
		err = s.delete(ctx, r)
	}
	if err != nil {
		return toStatus(err, name)
	}
	return nil
}

func (s *sourceService) bundle(r ce.SpecRequest) store.Bundle {
	return store.Bundle{ID: r.BundleID, Name: r.BundleID, ConsumerName: r.Consumer, Source: r.Source,
		Meta: r.Meta, Spec: r.Spec}
}

func (s *sourceService) create(ctx context.Context, r ce.SpecRequest) error {
	if r.Consumer == "" {
		return &invalidError{errors.New("clustername extension is required")}
	}
	_, err := s.writer.Create(ctx, s.bundle(r))
	return err
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

func (s *sourceService) update(ctx context.Context, r ce.SpecRequest) error {
	cur, err := s.owned(ctx, r)
	if err != nil {
		return err
	}
	b := s.bundle(r)
	b.ConsumerName, b.Name, b.Source = cur.ConsumerName, cur.Name, cur.Source
	_, err = s.writer.Update(ctx, cur, b, r.Version)
	return err
}

func (s *sourceService) delete(ctx context.Context, r ce.SpecRequest) error {
	_, err := s.owned(ctx, r)
	if errors.Is(err, store.ErrNotFound) {
		// Already gone: tell the client so its delete completes.
		for _, sub := range s.subscribers(r.Source, r.Consumer) {
			if err := s.sendDeleted(ctx, sub, r.BundleID, r.Consumer, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.writer.Delete(ctx, r.BundleID)
	return err
}

type invalidError struct{ error }
type forbiddenError struct{ error }

func (e *invalidError) Unwrap() error   { return e.error }
func (e *forbiddenError) Unwrap() error { return e.error }

// toStatus maps a write error to a gRPC status whose message is a
// Kubernetes StatusError in JSON, which sdk-go clients decode and return to
// their callers. Internal errors keep a plain message: clients treat those
// as retryable publish errors.
func toStatus(err error, name string) error {
	var (
		inv  *invalidError
		ve   validate.Errors
		ex   *bundlewrite.ExistsError
		del  *bundlewrite.DeletingError
		forb *forbiddenError
	)
	switch {
	case errors.As(err, &inv), errors.As(err, &ve), errors.Is(err, bundlewrite.ErrNoConsumer), errors.Is(err, store.ErrInvalid):
		return k8sStatus(codes.InvalidArgument, apierrors.NewBadRequest(err.Error()))
	case errors.As(err, &ex):
		return k8sStatus(codes.AlreadyExists, apierrors.NewAlreadyExists(manifestWorks, name))
	case errors.As(err, &del):
		// Not "already exists": the old bundle is on its way out.
		b := del.Current
		return k8sStatus(codes.Aborted, apierrors.NewConflict(manifestWorks, name, fmt.Errorf(
			"resource bundle %s (consumer %s) is still being deleted since %s; it can be written again once its "+
				"agent confirms the removal. Wait, or finalize it without the agent (its objects stay in the "+
				"cluster): DELETE %s/resource-bundles/%s?orphan=true",
			b.ID, b.ConsumerName, b.DeletedAt.UTC().Format(time.RFC3339), api.BasePath, b.ID)))
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
