package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// DefaultHeartbeat is how often an idle watch stream writes an empty line so
// proxies and clients know it is alive.
const DefaultHeartbeat = 15 * time.Second

// Renderer turns a stored bundle into its REST JSON object as request r
// asks for it.
type Renderer func(r *http.Request, b store.Bundle) any

// Event is one line of a REST watch stream.
type Event struct {
	Type   store.ChangeType `json:"type"`
	Seq    int64            `json:"seq"`
	Object any              `json:"object"`
}

// Handler serves GET /api/maestro/v1/resource-bundles?watch=true: a stream
// of newline-delimited JSON Events, one per bundle change, flushed as they
// happen. Query parameters: since (resume after this change sequence; absent:
// changes from now on) and search (the list search language). A DELETED
// event carries the bundle's id, consumer and source only, since the row is
// gone. The stream ends when the client goes away or falls too far behind;
// the client then resumes with since set to the last seq it received.
//
// Limits: one client (an authenticated subject, or a remote host without
// authentication) holds at most WithMaxWatches streams at once (429
// beyond); a stream whose client stops reading is closed once one write
// blocks for WithWriteTimeout; a stream that falls behind the broker's
// queue ends with an ERROR event saying from where to resume.
type Handler struct {
	broker       *Broker
	st           store.Store
	render       Renderer
	clock        clock.WithTicker
	log          *slog.Logger
	heartbeat    time.Duration
	writeTimeout time.Duration
	maxWatches   int
	watches      *auth.Cap // open streams by client
}

// Default limits of a watch handler.
const (
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxWatches   = 100
)

// WithWriteTimeout bounds how long one write to a watch stream may block
// before the stream is closed (a client that stopped reading).
func WithWriteTimeout(d time.Duration) HandlerOption { return func(h *Handler) { h.writeTimeout = d } }

// WithMaxWatches bounds the concurrent watch streams of one client.
func WithMaxWatches(n int) HandlerOption { return func(h *Handler) { h.maxWatches = n } }

// Scope narrows a watch stream to what its caller may see: Filter is
// and-ed with the request's search, Redact (if set) is applied to every
// bundle before it is rendered.
type Scope struct {
	Filter store.Filter
	Redact func(store.Bundle) store.Bundle
}

type scopeKey struct{}

// WithScope returns ctx carrying the scope of a watch request.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// HandlerOption configures a Handler.
type HandlerOption func(*Handler)

// WithHandlerClock sets the clock for heartbeats.
func WithHandlerClock(c clock.WithTicker) HandlerOption { return func(h *Handler) { h.clock = c } }

// WithHandlerLogger sets the logger.
func WithHandlerLogger(l *slog.Logger) HandlerOption { return func(h *Handler) { h.log = l } }

// WithHeartbeat sets the idle heartbeat interval.
func WithHeartbeat(d time.Duration) HandlerOption { return func(h *Handler) { h.heartbeat = d } }

// NewHandler returns a watch handler fed by b, reading bundles from st.
func NewHandler(b *Broker, st store.Store, render Renderer, opts ...HandlerOption) *Handler {
	h := &Handler{broker: b, st: st, render: render, clock: clock.RealClock{}, log: slog.Default(), heartbeat: DefaultHeartbeat,
		writeTimeout: DefaultWriteTimeout, maxWatches: DefaultMaxWatches}
	for _, o := range opts {
		o(h)
	}
	h.watches = auth.NewCap(h.maxWatches)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := FromNow
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "maestro-21", "since: want a non-negative integer, got "+strconv.Quote(s))
			return
		}
		since = n
	}
	filter, err := search.Parse(q.Get("search"), search.BundleFields)
	if err != nil {
		writeError(w, http.StatusBadRequest, "maestro-23", "search: "+err.Error())
		return
	}
	sc, _ := r.Context().Value(scopeKey{}).(Scope)
	switch {
	case sc.Filter != nil && filter != nil:
		filter = store.And{sc.Filter, filter}
	case sc.Filter != nil:
		filter = sc.Filter
	}
	client := clientOf(r)
	if !h.watches.Acquire(client) {
		writeError(w, http.StatusTooManyRequests, "maestro-17", fmt.Sprintf(
			"watch: client %s already holds %d watch streams (the limit); close one first", client, h.maxWatches))
		return
	}
	defer h.watches.Release(client)
	if since != FromNow {
		// The change log is gapless; a first kept change past since+1 means
		// the ones in between were pruned and cannot be replayed.
		first, err := h.st.ChangesSince(r.Context(), since, 1)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "maestro-9", "reading the change log: "+err.Error())
			return
		}
		if len(first) == 1 && first[0].Seq > since+1 {
			writeError(w, http.StatusGone, "maestro-6", fmt.Sprintf("since: change %d is older than the kept history "+
				"(the oldest kept is %d); list the bundles again and watch from the %s header of that list",
				since, first[0].Seq, api.ChangeSeqHeader))
			return
		}
	}
	rc := http.NewResponseController(w)
	// The server's read timeout is for request bodies; a watch lives longer.
	_ = rc.SetReadDeadline(time.Time{})
	flusher, _ := w.(http.Flusher)
	changes, cancel := h.broker.Subscribe(nil, since)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	// Every write may block for writeTimeout at most: a client that stops
	// reading does not hold the stream (and its broker queue) for ever.
	deadline := func() { _ = rc.SetWriteDeadline(h.clock.Now().Add(h.writeTimeout)) }
	deadline()
	flush()
	var last int64 = since
	enc := json.NewEncoder(w)
	seen := map[string]bool{} // bundles sent on this stream, for DELETED events
	tick := h.clock.NewTicker(h.heartbeat)
	defer tick.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			deadline()
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
			flush()
		case c, ok := <-changes:
			if !ok {
				// Fell behind the broker's queue: say so and from where to resume.
				deadline()
				reason := "watch: this stream fell too far behind and was dropped; list again and watch from the list's " + api.ChangeSeqHeader
				if last >= 0 {
					reason = fmt.Sprintf("watch: this stream fell too far behind and was dropped; resume with since=%d", last)
				}
				_ = enc.Encode(Event{Type: EventError, Seq: last, Object: api.Error{Kind: api.KindError, Code: "maestro-9", Reason: reason}})
				flush()
				h.log.Info("watch: slow watcher dropped", "client", client, "last_seq", last)
				return
			}
			last = c.Seq
			ev, send, err := h.event(r, c, filter, seen, sc.Redact)
			if err != nil {
				h.log.Warn("watch: read bundle", "bundle", c.BundleID, "err", err)
				return
			}
			if !send {
				continue
			}
			deadline()
			if err := enc.Encode(ev); err != nil {
				return
			}
			flush()
		}
	}
}

// event builds the event for change c, or reports that the stream skips it.
func (h *Handler) event(r *http.Request, c store.Change, filter store.Filter, seen map[string]bool,
	redact func(store.Bundle) store.Bundle) (Event, bool, error) {
	if c.Type == store.ChangeDeleted {
		stub := store.Bundle{ID: c.BundleID, ConsumerName: c.Consumer, Source: c.Source}
		ok, _ := Match(filter, stub)
		if !ok && !seen[c.BundleID] {
			return Event{}, false, nil
		}
		delete(seen, c.BundleID)
		return Event{Type: c.Type, Seq: c.Seq, Object: h.render(r, stub)}, true, nil
	}
	b, err := h.st.GetBundle(r.Context(), c.BundleID)
	if errors.Is(err, store.ErrNotFound) {
		return Event{}, false, nil // purged since; its DELETED change follows
	}
	if err != nil {
		return Event{}, false, err
	}
	if ok, _ := Match(filter, b); !ok {
		delete(seen, c.BundleID)
		return Event{}, false, nil
	}
	seen[c.BundleID] = true
	if redact != nil {
		b = redact(b)
	}
	return Event{Type: c.Type, Seq: c.Seq, Object: h.render(r, b)}, true, nil
}

// EventError is the type of the last event of a stream the server ends
// (the watcher fell behind); its object is a Maestro error body.
const EventError store.ChangeType = "ERROR"

// clientOf names the client of a watch for its limit: the authenticated
// subject, else the remote host.
func clientOf(r *http.Request) string {
	if id := auth.FromContext(r.Context()); id != auth.Anonymous {
		return id.Subject
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeError(w http.ResponseWriter, status int, code, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Kind: api.KindError, Code: code, Reason: reason})
}
