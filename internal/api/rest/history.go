package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/store"
)

// History limits.
const (
	DefaultHistory = 50
	MaxHistory     = 500
)

// HistoryEntry is one change log entry of a bundle.
type HistoryEntry struct {
	Seq  int64            `json:"seq"`
	Type store.ChangeType `json:"type"`
	At   time.Time        `json:"at"`
}

// bundleHistory serves GET /resource-bundles/{id}/history?limit=N: the
// bundle's newest change log entries, newest first (as far back as the
// change log is kept).
func (h *Handler) bundleHistory(w http.ResponseWriter, r *http.Request) {
	if h.history == nil {
		h.fail(w, r, errorf(http.StatusNotImplemented, CodeGeneral, "history: not enabled on this server"))
		return
	}
	limit := DefaultHistory
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistory {
			h.fail(w, r, badRequest("limit: want 1..%d, got %q", MaxHistory, s))
			return
		}
		limit = n
	}
	b, err := h.store.GetBundle(r.Context(), r.PathValue("id"))
	if err == nil {
		err = allowBundle(r, &b, auth.VerbSub)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	changes, err := h.history(r.Context(), b.ID, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]HistoryEntry, 0, len(changes))
	for _, c := range changes {
		items = append(items, HistoryEntry{Seq: c.Seq, Type: c.Type, At: c.At})
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "ResourceBundleHistory", "id": b.ID, "items": items})
}
