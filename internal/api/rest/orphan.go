package rest

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// Deletes that always end (DESIGN I9): an operator finalizes a bundle
// without its agent (DELETE /resource-bundles/{id}?orphan=true) or
// decommissions a cluster (DELETE /consumers/{id}?cascade=orphan). Both
// are admin actions and logged with the caller.

// orphanParam reads the orphan parameter of a bundle DELETE.
func orphanParam(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("orphan"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, CodeValidation, "orphan: %q is not true or false", v)
	}
}

// cascadeParam reads the cascade parameter of a consumer DELETE: "" (the
// consumer must have no bundles) or "orphan".
func cascadeParam(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("cascade"); v {
	case "":
		return false, nil
	case "orphan":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, CodeValidation,
			"cascade: %q is not supported; the only cascade is orphan (finalize every bundle without the agent, leaving its objects)", v)
	}
}

// orphanBundle finalizes a bundle without its agent: the server forgets
// it at once; the agent, when it returns holding it, drops the bundle and
// its records and leaves its objects in place.
func (h *Handler) orphanBundle(w http.ResponseWriter, r *http.Request) {
	if err := allowAdmin(r, "finalize resource bundles without their agent (orphan=true)"); err != nil {
		h.fail(w, r, err)
		return
	}
	b, err := h.store.OrphanBundle(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Warn("rest: resource bundle finalized without its agent; its objects stay in the cluster",
		"bundle", b.ID, "name", b.Name, "consumer", b.ConsumerName, "caller", caller(r).String(),
		"was_deleting", b.DeletedAt != nil)
	h.specWritten(b.ConsumerName)
	w.WriteHeader(http.StatusNoContent)
}

// decommissionConsumer removes a consumer and finalizes every bundle it
// has; its agent is refused from now on.
func (h *Handler) decommissionConsumer(w http.ResponseWriter, r *http.Request) {
	d, err := h.store.DecommissionConsumer(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Warn("rest: consumer decommissioned; its bundles are finalized and its objects stay in the cluster",
		"consumer", d.Name, "bundles", d.Bundles, "caller", caller(r).String())
	h.specWritten(d.Name)
	w.WriteHeader(http.StatusNoContent)
}

// deletingConflict explains why a bundle marked deleting cannot be created
// again or changed, and the way out.
func (h *Handler) deletingConflict(b *store.Bundle, what string) error {
	var f *api.Freshness
	if h.freshness != nil {
		f = h.freshness.Freshness(b)
	}
	why := ""
	if d := deletion(b, f); d != nil {
		why = fmt.Sprintf(" (%s: %s)", d.Reason, d.Message)
	}
	return errorf(http.StatusConflict, CodeConflict, "resource bundle %s (consumer %s, metadata.name %s) is still being "+
		"deleted since %s%s; it %s until its agent confirms the removal. Wait, or finalize it without the agent "+
		"(its objects stay in the cluster): DELETE %s?orphan=true",
		b.ID, b.ConsumerName, b.Meta.Name, b.DeletedAt.UTC().Format(time.RFC3339), why, what, bundleHref(b.ID))
}

// deleteConsumerConflict is the 409 of a plain consumer DELETE while the
// consumer has bundles.
func deleteConsumerConflict(name string, cause error) error {
	if !errors.Is(cause, store.ErrConflict) {
		return cause
	}
	return errorf(http.StatusConflict, CodeConflict, "consumer %s still has resource bundles (deleting ones included); "+
		"delete them and wait until its agent confirms, or decommission the cluster: DELETE %s?cascade=orphan "+
		"finalizes every bundle without the agent, leaves its objects in place and refuses the agent from then on (%v)",
		name, consumerHref(name), cause)
}
