// Package rest serves baton's Maestro-compatible REST API under
// /api/maestro/v1: consumers, resource bundles (Maestro's read and delete
// verbs plus baton's create, replace and merge-patch), list parameters
// (page, size, search, orderBy, fields) and Maestro's error body.
//
// The handler owns no state besides its options; everything durable is in
// the store. Every write is validated (package validate) before the store
// is called, so a rejected request changes nothing.
//
// Lists: page counts from 1 (default 1; page < 1 is a 400); size follows
// Maestro: default DefaultPageSize, a negative size or one over MaxPageSize
// means MaxPageSize, and size=0 returns no items (only the total). A page beyond the last is an empty list
// with the true total. The envelope's size is the number of items
// returned (Maestro's behaviour).
//
// List responses are streamed: the store counts the matches and the page
// in one snapshot, the envelope (kind, page, size, total) is written first,
// then each item is encoded into a 64 KiB buffered writer as the store
// reads and decodes it (store.StreamBundles, StreamConsumers), so the memory of a list does
// not grow with its page size. Stored JSON (manifests) is copied as raw
// bytes, never decoded again. Each write may block ListWriteTimeout at
// most: a client that stops reading is cut off and releases the store's
// read.
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// List sizes.
const (
	DefaultPageSize = 100
	// MaxPageSize is the largest page (Maestro's 65500); a larger or
	// negative size means this.
	MaxPageSize = 65500
)

// DefaultSource is the source of bundles created over REST without one.
const DefaultSource = "baton"

// FreshnessSource gives the freshness verdict of a bundle (I6). It is
// called for every bundle the API returns, lists included, so it must be
// cheap and must not block on I/O. A nil verdict omits the field.
type FreshnessSource interface {
	Freshness(b *store.Bundle) *api.Freshness
}

// Store is the part of the store the handler reads and writes. Errors
// wrap store.ErrNotFound, store.ErrConflict or store.ErrInvalid.
type Store interface {
	bundlewrite.Store
	StreamBundles(ctx context.Context, opts store.ListOptions, start func(total, n int) error, each func(*store.Bundle) error) error
	OrphanBundle(ctx context.Context, id string) (store.Bundle, error)
	LatestChange(ctx context.Context) (int64, error)

	CreateConsumer(ctx context.Context, c store.Consumer) (store.Consumer, error)
	GetConsumer(ctx context.Context, idOrName string) (store.Consumer, error)
	StreamConsumers(ctx context.Context, opts store.ListOptions, start func(total, n int) error, each func(*store.Consumer) error) error
	UpdateConsumerLabels(ctx context.Context, id string, labels map[string]string) (store.Consumer, error)
	DeleteConsumer(ctx context.Context, id string) error
	DecommissionConsumer(ctx context.Context, idOrName string) (store.Decommission, error)
}

// Options configure the handler.
type Options struct {
	// Store holds consumers and bundles. Required.
	Store Store
	// Logger receives internal errors (5xx); nil discards.
	Logger *slog.Logger
	// Clock is used for nothing time-critical today; nil is the real clock.
	Clock clock.PassiveClock
	// Freshness adds status.freshness to bundles; nil omits it.
	Freshness FreshnessSource
	// Source is the source of bundles created without one; empty is DefaultSource.
	Source string
	// OnSpecWrite, when set, is called with the consumer after every
	// accepted spec change (create, update, delete), so delivery starts at
	// once instead of at the next outbox poll.
	OnSpecWrite func(consumer string)
	// Watch, when set, builds the handler of GET /resource-bundles?watch=true
	// from the function that renders a stored bundle as REST JSON.
	Watch func(render func(*http.Request, store.Bundle) any) http.Handler
	// Resync, when set, asks the agent of consumer to re-report the given
	// bundles now (all of them for none); an error wrapping
	// protocol.ErrDisconnected means no agent session is open. It serves POST
	// /consumers/{id}/resync and /resource-bundles/{id}/resync.
	Resync func(ctx context.Context, consumer string, bundleIDs []string) error
	// Subscriptions, when set, serves /subscriptions (webhooks); without it
	// those routes answer 501.
	Subscriptions Subscriptions
	// History, when set, serves GET /resource-bundles/{id}/history: the
	// newest change log entries of a bundle (web view).
	History func(ctx context.Context, id string, limit int) ([]store.Change, error)
	// Transport is the most restrictive transport agents are served on:
	// a bundle whose spec message it cannot carry is refused; "" is gRPC.
	Transport limits.Transport
	// ListWriteTimeout bounds each write of a list response: a client that
	// stops reading for this long is cut off and the store read behind
	// the list released. 0 is DefaultListWriteTimeout.
	ListWriteTimeout time.Duration
}

// DefaultListWriteTimeout is how long one write of a list response may
// block on a client that does not read.
const DefaultListWriteTimeout = 30 * time.Second

// Handler serves the REST API.
type Handler struct {
	store     Store
	writer    *bundlewrite.Writer
	log       *slog.Logger
	clock     clock.PassiveClock
	freshness FreshnessSource
	source    string
	onWrite   func(consumer string)
	watch     http.Handler
	resync    func(ctx context.Context, consumer string, bundleIDs []string) error
	subs      Subscriptions
	history   func(ctx context.Context, id string, limit int) ([]store.Change, error)
	transport limits.Transport
	listWrite time.Duration
	mux       *http.ServeMux
}

// Route is one registered method and path pattern (net/http syntax).
type Route struct {
	Method  string
	Pattern string // e.g. "/api/maestro/v1/consumers/{id}"
	handler http.HandlerFunc
}

// New returns a handler serving every route of Routes.
func New(opts Options) *Handler {
	h := &Handler{
		store:     opts.Store,
		log:       opts.Logger,
		clock:     opts.Clock,
		freshness: opts.Freshness,
		source:    opts.Source,
		onWrite:   opts.OnSpecWrite,
		resync:    opts.Resync,
		subs:      opts.Subscriptions,
		history:   opts.History,
		transport: opts.Transport,
		listWrite: opts.ListWriteTimeout,
		mux:       http.NewServeMux(),
	}
	if h.listWrite <= 0 {
		h.listWrite = DefaultListWriteTimeout
	}
	if h.transport == "" {
		h.transport = limits.GRPC
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.clock == nil {
		h.clock = clock.RealClock{}
	}
	if h.source == "" {
		h.source = DefaultSource
	}
	h.writer = &bundlewrite.Writer{Store: h.store, Notify: h.onWrite,
		Transport: func() limits.Transport { return h.transport }}
	if opts.Watch != nil {
		h.watch = opts.Watch(h.Render)
	}
	for _, r := range h.routes() {
		h.mux.HandleFunc(r.Method+" "+r.Pattern, r.handler)
	}
	return h
}

func (h *Handler) routes() []Route {
	const v1 = api.BasePath
	return []Route{
		{"GET", "/api/maestro", h.getAPI},
		{"GET", v1, h.getVersion},
		{"GET", v1 + "/openapi", h.getOpenAPI},
		{"GET", v1 + "/consumers", h.listConsumers},
		{"POST", v1 + "/consumers", h.createConsumer},
		{"GET", v1 + "/consumers/{id}", h.getConsumer},
		{"PATCH", v1 + "/consumers/{id}", h.patchConsumer},
		{"DELETE", v1 + "/consumers/{id}", h.deleteConsumer},
		{"GET", v1 + "/resource-bundles", h.listBundles},
		{"POST", v1 + "/resource-bundles", h.createBundle},
		{"GET", v1 + "/resource-bundles/{id}", h.getBundle},
		{"PUT", v1 + "/resource-bundles/{id}", h.putBundle},
		{"PATCH", v1 + "/resource-bundles/{id}", h.patchBundle},
		{"DELETE", v1 + "/resource-bundles/{id}", h.deleteBundle},
		{"POST", v1 + "/consumers/{id}/resync", h.resyncConsumer},
		{"POST", v1 + "/resource-bundles/{id}/resync", h.resyncBundle},
		{"GET", v1 + "/resource-bundles/{id}/history", h.bundleHistory},
		{"GET", v1 + "/subscriptions", h.listSubscriptions},
		{"POST", v1 + "/subscriptions", h.createSubscription},
		{"GET", v1 + "/subscriptions/{id}", h.getSubscription},
		{"DELETE", v1 + "/subscriptions/{id}", h.deleteSubscription},
	}
}

// Routes lists the method and pattern of every route the handler serves.
func (h *Handler) Routes() []Route {
	rs := h.routes()
	for i := range rs {
		rs[i].handler = nil
	}
	return rs
}

// Pattern returns the route pattern ("GET /api/maestro/v1/consumers/{id}")
// that serves r, or "" when no route does. Metrics use it as the route label.
func (h *Handler) Pattern(r *http.Request) string {
	_, p := h.mux.Handler(r)
	return p
}

// ServeHTTP serves the API. Unknown paths and methods get Maestro error
// bodies (404, 405 with Allow).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.noRoute(w, r)
		return
	}
	if id := caller(r); r.Method != http.MethodGet && r.Method != http.MethodHead && !id.CanWrite() {
		h.fail(w, r, auth.Forbidden(id, "is read-only: %s %s is a write", r.Method, r.URL.Path))
		return
	}
	h.mux.ServeHTTP(w, r)
}
