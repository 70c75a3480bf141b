package rest

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

func (h *Handler) listBundles(w http.ResponseWriter, r *http.Request) {
	if h.watch != nil && r.URL.Query().Get("watch") == "true" {
		h.serveWatch(w, r)
		return
	}
	lp, err := parseList(r, search.BundleFields, bundleMembers)
	if err == nil {
		lp.opts.Filter, err = scopeList(r, lp.opts.Filter)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Read the change position first: a watch from it misses nothing that
	// the list below does not already show.
	seq, err := h.store.LatestChange(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set(api.ChangeSeqHeader, strconv.FormatInt(seq, 10))
	var lw *listWriter
	err = h.store.StreamBundles(r.Context(), lp.opts, func(total, n int) error {
		if lp.none {
			n = 0
		}
		lw = h.startList(w, api.KindResourceBundleList, lp.opts.Page, n, total, lp.fields)
		if lp.none {
			return errNoItems
		}
		return nil
	}, func(b *store.Bundle) error {
		return lw.item(h.bundleOut(forCaller(r, b), ext(r)))
	})
	if lw == nil { // failed before anything was written
		w.Header().Del(api.ChangeSeqHeader)
		h.fail(w, r, err)
		return
	}
	if err != nil && !errors.Is(err, errNoItems) {
		lw.fail(err)
	}
	h.finishList(r, lw)
}

// errNoItems stops a list of size=0 after its envelope.
var errNoItems = errors.New("no items asked for")

func (h *Handler) getBundle(w http.ResponseWriter, r *http.Request) {
	var p *projection
	if v := r.URL.Query().Get("fields"); v != "" {
		var err error
		if p, err = parseProjection(v, bundleMembers); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	b, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
	if err == nil {
		err = allowBundle(r, &b, auth.VerbSub)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := writeOne(w, http.StatusOK, h.bundleOut(forCaller(r, &b), ext(r)), p); err != nil {
		h.fail(w, r, err)
	}
}

// deleteBundle marks the bundle deleting; it disappears once its agent
// confirms removal. Deleting a bundle already marked is a no-op. With
// orphan=true it is finalized without the agent (orphan.go).
func (h *Handler) deleteBundle(w http.ResponseWriter, r *http.Request) {
	orphan, err := orphanParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if orphan {
		h.orphanBundle(w, r)
		return
	}
	if !caller(r).IsAdmin() {
		cur, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
		if err == nil {
			err = allowBundle(r, &cur, auth.VerbPub)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if _, err := h.writer.Delete(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) createBundle(w http.ResponseWriter, r *http.Request) {
	var in api.ResourceBundle
	if err := decodeBody(w, r, &in, MaxBundleBody); err != nil {
		h.fail(w, r, err)
		return
	}
	// A source identity creates bundles of its own source.
	if src, ok := caller(r).FixedSource(); ok && in.Source == "" {
		in.Source = src
	}
	b, err := h.newBundle(&in)
	if err == nil {
		err = allowBundle(r, &b, auth.VerbPub)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.writer.Create(r.Context(), b)
	if err != nil {
		h.fail(w, r, h.writeError(err, &b, "can be created again"))
		return
	}
	h.writeBundle(w, r, http.StatusCreated, &out)
}

// writeError gives the writer's errors about b their REST codes and
// texts; what says what a bundle marked deleting cannot do yet.
func (h *Handler) writeError(err error, b *store.Bundle, what string) error {
	var (
		del *bundlewrite.DeletingError
		ex  *bundlewrite.ExistsError
	)
	switch {
	case errors.Is(err, bundlewrite.ErrNoConsumer):
		return errorf(http.StatusBadRequest, CodeValidation, "consumer_name: no consumer named %q", b.ConsumerName)
	case errors.As(err, &del):
		return h.deletingConflict(&del.Current, what)
	case errors.As(err, &ex):
		b = &ex.Current
		return errorf(http.StatusConflict, CodeConflict, "resource bundle %s (consumer %s, metadata.name %s, source %s) "+
			"already exists; use PUT %s to change it", b.ID, b.ConsumerName, b.Meta.Name, b.Source, bundleHref(b.ID))
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "resource bundle %s: %v; GET it and retry with its current version", b.ID, err)
	}
	return err
}

// putBundle replaces metadata and spec. version in the body is the
// version the client read: a different current version is a 409; 0 or
// absent means "whatever is current".
func (h *Handler) putBundle(w http.ResponseWriter, r *http.Request) {
	var in api.ResourceBundle
	if err := decodeBody(w, r, &in, MaxBundleBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Version < 0 {
		h.fail(w, r, errorf(http.StatusBadRequest, CodeValidation, "version: must not be negative"))
		return
	}
	cur, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
	if err == nil {
		err = allowBundle(r, &cur, auth.VerbPub)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.update(w, r, &cur, &in, in.Version, false)
}

// patchBundle merges the body into the current bundle (members present in
// the body replace the current ones; metadata members merge) and stores the
// result like PUT. Without a version in the body, a concurrent change is
// retried on the new current bundle.
func (h *Handler) patchBundle(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r, MaxBundleBody)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for attempt := 0; ; attempt++ {
		cur, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
		if err == nil {
			err = allowBundle(r, &cur, auth.VerbPub)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		merged := h.bundleOut(&cur, true).ResourceBundle
		merged.Version = 0
		if err := decodeJSON(data, &merged); err != nil {
			h.fail(w, r, err)
			return
		}
		expected := merged.Version
		if expected == 0 {
			expected = cur.Version()
		}
		retry := merged.Version == 0 && attempt < 3
		if !h.update(w, r, &cur, &merged, expected, retry) {
			continue // the bundle changed under us; merge again onto the new version
		}
		return
	}
}

// update stores in as the new content of cur. It returns false without
// writing a response only when retry is set and the store reported a
// version conflict on a bundle not marked deleting; otherwise it answers
// the request and returns true.
func (h *Handler) update(w http.ResponseWriter, r *http.Request, cur *store.Bundle, in *api.ResourceBundle, expected int64, retry bool) bool {
	out, err := h.writer.Update(r.Context(), *cur, toStore("", in), expected)
	var del *bundlewrite.DeletingError
	if retry && errors.Is(err, store.ErrConflict) && !errors.As(err, &del) {
		return false
	}
	if err != nil {
		h.fail(w, r, h.writeError(err, cur, "cannot be changed"))
		return true
	}
	h.writeBundle(w, r, http.StatusOK, &out)
	return true
}

func (h *Handler) writeBundle(w http.ResponseWriter, r *http.Request, status int, b *store.Bundle) {
	if err := writeOne(w, status, h.bundleOut(b, ext(r)), nil); err != nil {
		h.fail(w, r, err)
	}
}
