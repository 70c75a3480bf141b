package apply

import (
	"context"
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestIsRetryable(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"nil":            {nil, false},
		"conflict":       {apierrors.NewConflict(gr, "x", errors.New("rv")), true},
		"internal":       {apierrors.NewInternalError(errors.New("boom")), true},
		"unavailable":    {apierrors.NewServiceUnavailable("later"), true},
		"server timeout": {apierrors.NewServerTimeout(gr, "create", 1), true},
		"timeout":        {apierrors.NewTimeoutError("slow", 1), true},
		"throttled":      {apierrors.NewTooManyRequests("slow down", 1), true},
		"forbidden":      {apierrors.NewForbidden(gr, "x", errors.New("rbac")), true},
		"deadline":       {context.DeadlineExceeded, true},
		"network":        {errors.New("dial tcp: connection refused"), true},
		"invalid":        {apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "x", nil), false},
		"bad request":    {apierrors.NewBadRequest("no"), false},
		"too large":      {apierrors.NewRequestEntityTooLargeError("big"), false},
		"no kind match":  {&meta.NoKindMatchError{GroupKind: schema.GroupKind{Kind: "Gadget"}}, false},
		"wrapped":        {fmt.Errorf("x: %w", apierrors.NewBadRequest("no")), false},
		"terminal Error": {&Error{Object: "Service a/b", Action: "apply", Terminal: true, Err: errors.New("x")}, false},
		"retry Error":    {fmt.Errorf("ctx: %w", &Error{Object: "Service a/b", Action: "apply", Err: apierrors.NewBadRequest("no")}), true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := IsRetryable(tc.err); got != tc.want {
				t.Fatalf("IsRetryable(%v): got %v; want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	cause := apierrors.NewConflict(schema.GroupResource{Resource: "services"}, "router", errors.New("changed"))
	err := objErr("Service hypershift-sharedingress/router", "apply", cause)
	want := "Service hypershift-sharedingress/router: apply: " + cause.Error()
	if err.Error() != want || !errors.Is(err, cause) || err.Terminal || err.Reason != ReasonConflict {
		t.Fatalf("objErr: got %q reason %s terminal %v", err, err.Reason, err.Terminal)
	}
}

func TestResultSummary(t *testing.T) {
	term := &Error{Object: "A a", Action: "apply", Terminal: true, Err: errors.New("bad")}
	retry := &Error{Object: "B b", Action: "delete", Err: errors.New("later")}
	r := Result{Objects: []ObjectResult{{Outcome: Created}, {Outcome: Failed, Err: term, Terminal: true}}}
	if r.Retryable() || r.Pending() || !errors.Is(r.Err(), term) {
		t.Fatalf("terminal only: retryable=%v pending=%v err=%v", r.Retryable(), r.Pending(), r.Err())
	}
	r.Removed = []ObjectResult{{Outcome: Failed, Err: retry}, {Outcome: Deleting}}
	if !r.Retryable() || !r.Pending() || !errors.Is(r.Err(), retry) {
		t.Fatalf("with removed: retryable=%v pending=%v err=%v", r.Retryable(), r.Pending(), r.Err())
	}
	if (Result{}).Err() != nil {
		t.Fatal("empty result has an error")
	}
}
