package rest

import (
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// consumerCreate is the body of POST /consumers.
type consumerCreate struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Server-set fields of the GET shape, accepted and ignored so a GET
	// result can be posted back.
	ID        string          `json:"id,omitempty"`
	Kind      string          `json:"kind,omitempty"`
	Href      string          `json:"href,omitempty"`
	CreatedAt any             `json:"created_at,omitempty"`
	UpdatedAt any             `json:"updated_at,omitempty"`
	Agent     *api.AgentState `json:"agent,omitempty"`
}

// consumerPatch is the body of PATCH /consumers/{id}: labels replace the
// consumer's labels ({} clears them; absent or null changes nothing).
type consumerPatch struct {
	Labels *map[string]string `json:"labels"`
}

func (h *Handler) listConsumers(w http.ResponseWriter, r *http.Request) {
	lp, err := parseList(r, search.ConsumerFields, consumerMembers)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var lw *listWriter
	now := h.clock.Now()
	err = h.store.StreamConsumers(r.Context(), lp.opts, func(total, n int) error {
		if lp.none {
			n = 0
		}
		lw = h.startList(w, api.KindConsumerList, lp.opts.Page, n, total, lp.fields)
		if lp.none {
			return errNoItems
		}
		return nil
	}, func(c *store.Consumer) error {
		return lw.item(consumerOut(c, ext(r), now))
	})
	if lw == nil { // failed before anything was written
		h.fail(w, r, err)
		return
	}
	if err != nil && !errors.Is(err, errNoItems) {
		lw.fail(err)
	}
	h.finishList(r, lw)
}

func (h *Handler) createConsumer(w http.ResponseWriter, r *http.Request) {
	if err := allowAdmin(r, "create consumers"); err != nil {
		h.fail(w, r, err)
		return
	}
	var in consumerCreate
	if err := decodeBody(w, r, &in, MaxConsumerBody); err != nil {
		h.fail(w, r, err)
		return
	}
	id := uuid.NewString()
	if in.Name == "" {
		in.Name = id // Maestro names an unnamed consumer after its id
	}
	if err := validate.Consumer(in.Name, in.Labels); err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.store.CreateConsumer(r.Context(), store.Consumer{ID: id, Name: in.Name, Labels: in.Labels})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, consumerOut(&c, ext(r), h.clock.Now()))
}

func (h *Handler) getConsumer(w http.ResponseWriter, r *http.Request) {
	c, err := h.store.GetConsumer(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, consumerOut(&c, ext(r), h.clock.Now()))
}

func (h *Handler) patchConsumer(w http.ResponseWriter, r *http.Request) {
	if err := allowAdmin(r, "change consumers"); err != nil {
		h.fail(w, r, err)
		return
	}
	var in consumerPatch
	if err := decodeBody(w, r, &in, MaxConsumerBody); err != nil {
		h.fail(w, r, err)
		return
	}
	cur, err := h.store.GetConsumer(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Labels == nil {
		writeJSON(w, http.StatusOK, consumerOut(&cur, ext(r), h.clock.Now()))
		return
	}
	if err := validate.Labels("labels", *in.Labels); err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.store.UpdateConsumerLabels(r.Context(), cur.ID, *in.Labels)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, consumerOut(&c, ext(r), h.clock.Now()))
}

func (h *Handler) deleteConsumer(w http.ResponseWriter, r *http.Request) {
	if err := allowAdmin(r, "delete consumers"); err != nil {
		h.fail(w, r, err)
		return
	}
	cascade, err := cascadeParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if cascade {
		h.decommissionConsumer(w, r)
		return
	}
	cur, err := h.store.GetConsumer(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.store.DeleteConsumer(r.Context(), cur.ID); err != nil {
		h.fail(w, r, deleteConsumerConflict(cur.Name, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// finishList completes a streamed list; a failure after the header was
// sent aborts the connection.
func (h *Handler) finishList(r *http.Request, lw *listWriter) {
	if err := lw.finish(); err != nil {
		if lw.clientGone() {
			h.log.Info("rest: list: the client stopped reading; response cut off", "path", r.URL.Path, "err", err)
		} else {
			h.log.Error("rest: list: failed after the response started", "path", r.URL.Path, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}
