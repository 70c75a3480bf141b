package apply

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Outcome is what happened to one object.
type Outcome string

const (
	// Created: the object did not exist and was created.
	Created Outcome = "Created"
	// Configured: the object existed and was changed.
	Configured Outcome = "Configured"
	// Unchanged: the object existed and already matched the manifest (or the
	// strategy does not write: CreateOnly on an existing object, ReadOnly on a
	// present one).
	Unchanged Outcome = "Unchanged"
	// Deleted: the object is gone (deleted by the applier, or already absent).
	Deleted Outcome = "Deleted"
	// Deleting: deletion was requested but the object still exists (for
	// example a foregroundDeletion finalizer is pending). Call again.
	Deleting Outcome = "Deleting"
	// Orphaned: the object was left in the cluster on purpose and is no
	// longer tracked by the bundle; Reason says why.
	Orphaned Outcome = "Orphaned"
	// Skipped: nothing was written; Reason says why (ReadOnly object absent).
	Skipped Outcome = "Skipped"
	// Failed: the action failed; Err holds the cause and Terminal says
	// whether retrying can help.
	Failed Outcome = "Failed"
)

// Reasons accompanying an outcome.
const (
	ReasonNotFound        = "NotFound"          // ReadOnly object absent
	ReasonReadOnly        = "ReadOnly"          // ReadOnly objects are never deleted
	ReasonNotOwned        = "NotOwned"          // the bundle did not create the object
	ReasonUIDChanged      = "UIDChanged"        // someone else recreated the object
	ReasonOrphanPolicy    = "OrphanPolicy"      // delete option Orphan
	ReasonOrphaningRule   = "OrphaningRule"     // matched a SelectivelyOrphan rule
	ReasonInvalidManifest = "InvalidManifest"   // manifest cannot be applied as written
	ReasonUnknownKind     = "UnknownKind"       // kind not served by the cluster
	ReasonInvalid         = "Invalid"           // API server rejected the object (400/422)
	ReasonApplyConflict   = "ApplyConflict"     // server-side apply field conflict
	ReasonConflict        = "Conflict"          // resourceVersion conflict
	ReasonTerminating     = "Terminating"       // object is being deleted; retry later
	ReasonNotEstablished  = "CRDNotEstablished" // CRD did not become Established in time
	ReasonAPIError        = "APIError"          // any other API or transport error
)

// ObjectResult is the outcome for one manifest (Apply) or one recorded
// object (Delete, and objects removed from a bundle by Apply).
type ObjectResult struct {
	// Ordinal is the manifest's index in the bundle; -1 for an object that
	// is no longer in the bundle.
	Ordinal   int
	GVK       schema.GroupVersionKind
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
	Strategy  workv1.UpdateStrategyType
	Outcome   Outcome
	Reason    string
	// Owned: the bundle created the object and will delete it.
	Owned bool
	// Exists and the identity below describe the live object after the
	// action, when it exists.
	Exists          bool
	UID             types.UID
	ResourceVersion string
	Generation      int64
	// Err is set when Outcome is Failed (an *Error).
	Err error
	// Terminal: retrying the same manifest cannot succeed (invalid manifest,
	// unknown kind, rejected by validation).
	Terminal bool
}

// ResourceMeta returns the work vocabulary's description of the object.
func (o ObjectResult) ResourceMeta() workv1.ManifestResourceMeta {
	return workv1.ManifestResourceMeta{
		Ordinal: int32(o.Ordinal), Group: o.GVK.Group, Version: o.GVK.Version, Kind: o.GVK.Kind,
		Resource: o.GVR.Resource, Name: o.Name, Namespace: o.Namespace,
	}
}

// Retryable says whether the object failed with an error worth retrying.
func (o ObjectResult) Retryable() bool { return o.Outcome == Failed && !o.Terminal }

// Result is the outcome of one Apply or Delete of a bundle.
type Result struct {
	BundleID   string
	Generation int64
	// Objects: for Apply, one entry per manifest in ordinal order; for
	// Delete, one entry per object the bundle's record holds.
	Objects []ObjectResult
	// Removed: for Apply, objects of an earlier generation that are no
	// longer in the bundle (Deleted, Deleting, Orphaned or Failed).
	Removed []ObjectResult
}

// Err joins the errors of every failed object (nil when none failed).
func (r Result) Err() error {
	var errs []error
	for _, o := range r.all() {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return errors.Join(errs...)
}

// Retryable says whether some object failed with a retryable error.
func (r Result) Retryable() bool {
	for _, o := range r.all() {
		if o.Retryable() {
			return true
		}
	}
	return false
}

// Pending says whether some object is still being deleted.
func (r Result) Pending() bool {
	for _, o := range r.all() {
		if o.Outcome == Deleting {
			return true
		}
	}
	return false
}

func (r Result) all() []ObjectResult {
	return append(append([]ObjectResult(nil), r.Objects...), r.Removed...)
}

// Error is an object's failure: "Service ns/name: apply: cause".
type Error struct {
	Object   string // "Service ns/name", or "manifest[3]" when unidentified
	Action   string // apply, create, update, delete, get, resolve
	Reason   string
	Terminal bool
	Err      error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %v", e.Object, e.Action, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: conflicts, server
// errors, timeouts, throttling and transport failures are; invalid
// manifests, unknown kinds and validation rejections are not. nil is not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return !e.Terminal
	}
	return !isTerminal(err)
}

// isTerminal classifies a raw client error.
func isTerminal(err error) bool {
	switch {
	case meta.IsNoMatchError(err),
		apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err):
		return true
	}
	return false
}

// reasonOf names the cause of a raw client error.
func reasonOf(err error) string {
	switch {
	case meta.IsNoMatchError(err):
		return ReasonUnknownKind
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return ReasonInvalid
	case apierrors.IsConflict(err):
		return ReasonConflict
	}
	return ReasonAPIError
}

// objErr wraps a client error for an object, classifying it.
func objErr(object, action string, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Object: object, Action: action, Reason: reasonOf(err), Terminal: isTerminal(err), Err: err}
}

// fail marks o as failed with err.
func (o *ObjectResult) fail(err *Error) {
	o.Outcome, o.Reason, o.Err, o.Terminal = Failed, err.Reason, err, err.Terminal
}
