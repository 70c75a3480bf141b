package rest

import (
	"errors"
	"net/http"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// specWritten tells the delivery path that consumer has a new spec event.
func (h *Handler) specWritten(consumer string) {
	if h.onWrite != nil {
		h.onWrite(consumer)
	}
}

// resyncConsumer asks the consumer's agent to re-report every bundle.
func (h *Handler) resyncConsumer(w http.ResponseWriter, r *http.Request) {
	if err := allowAdmin(r, "resync a whole consumer"); err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.store.GetConsumer(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.requestResync(w, r, c.Name, nil)
}

// resyncBundle asks the bundle's agent to re-report it.
func (h *Handler) resyncBundle(w http.ResponseWriter, r *http.Request) {
	b, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
	if err == nil {
		err = allowBundle(r, &b, auth.VerbPub)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.requestResync(w, r, b.ConsumerName, []string{b.ID})
}

func (h *Handler) requestResync(w http.ResponseWriter, r *http.Request, consumer string, ids []string) {
	if h.resync == nil {
		h.fail(w, r, errorf(http.StatusNotImplemented, CodeGeneral, "resync: this server has no agent endpoint"))
		return
	}
	if err := h.resync(r.Context(), consumer, ids); err != nil {
		if errors.Is(err, protocol.ErrDisconnected) || errors.Is(err, store.ErrNotFound) {
			err = errorf(http.StatusConflict, CodeConflict, "resync: the agent of consumer %s is not connected; "+
				"its bundles are reported Stale until it reconnects, and it re-reports everything then", consumer)
		}
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"kind": "ResyncRequest", "consumer": consumer, "bundles": ids})
}

// Render returns the REST JSON object of a stored bundle as the request r
// asks for it (for the watch stream).
func (h *Handler) Render(r *http.Request, b store.Bundle) any { return h.bundleOut(&b, ext(r)) }

// ext reports whether r asks for baton's additions (api.ExtensionsHeader).
func ext(r *http.Request) bool { return api.WantsExtensions(r.Header) }
