package rest

import (
	"context"
	"net/http"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// MaxSubscriptionBody bounds the body of POST /subscriptions.
const MaxSubscriptionBody = 64 << 10

// Subscriptions keeps webhook subscriptions (webhook.Service). Create and
// Delete start and stop deliveries; State names a delivery record's state.
type Subscriptions interface {
	CreateSubscription(ctx context.Context, s store.Subscription) (store.Subscription, error)
	ListSubscriptions(ctx context.Context) ([]store.Subscription, error)
	GetSubscription(ctx context.Context, idOrName string) (store.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
	State(d store.DeliveryState) string
}

var errNoWebhooks = errorf(http.StatusNotImplemented, CodeGeneral, "webhook subscriptions are not enabled on this server")

func (h *Handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptionsAllowed(w, r) {
		return
	}
	subs, err := h.subs.ListSubscriptions(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.List[api.Subscription]{Kind: api.KindSubscriptionList, Page: 1, Size: len(subs), Total: len(subs), Items: []api.Subscription{}}
	for i := range subs {
		out.Items = append(out.Items, h.subscriptionOut(&subs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptionsAllowed(w, r) {
		return
	}
	var in api.Subscription
	if err := decodeBody(w, r, &in, MaxSubscriptionBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validate.Subscription(&in); err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.subs.CreateSubscription(r.Context(), store.Subscription{Name: in.Name, URL: in.URL, Secret: in.Secret,
		Search: in.Search, Events: in.Events, Headers: in.Headers})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.subscriptionOut(&s))
}

func (h *Handler) getSubscription(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptionsAllowed(w, r) {
		return
	}
	s, err := h.subs.GetSubscription(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.subscriptionOut(&s))
}

func (h *Handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if !h.subscriptionsAllowed(w, r) {
		return
	}
	s, err := h.subs.GetSubscription(r.Context(), r.PathValue("id"))
	if err == nil {
		err = h.subs.DeleteSubscription(r.Context(), s.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subscriptionsAllowed answers the request itself (501 without webhooks,
// 403 for anyone but an admin: URLs and headers may carry credentials)
// and reports false, or reports true.
func (h *Handler) subscriptionsAllowed(w http.ResponseWriter, r *http.Request) bool {
	if err := allowAdmin(r, "manage webhook subscriptions"); err != nil {
		h.fail(w, r, err)
		return false
	}
	if h.subs == nil {
		h.fail(w, r, errNoWebhooks)
		return false
	}
	return true
}

// subscriptionOut is the REST shape of s: never with its secret.
func (h *Handler) subscriptionOut(s *store.Subscription) api.Subscription {
	d := s.Delivery
	events := s.Events
	if events == nil {
		events = []string{}
	}
	return api.Subscription{
		ID: s.ID, Kind: api.KindSubscription, Href: api.BasePath + "/subscriptions/" + s.ID,
		Name: s.Name, URL: s.URL, Search: s.Search, Events: events, Headers: s.Headers, CreatedAt: s.CreatedAt,
		Status: &api.SubscriptionState{
			State: h.subs.State(d), LastSuccess: d.LastSuccess, LastError: d.LastError, LastErrorAt: d.LastErrorAt,
			Failures: d.Failures, Delivered: d.Delivered, Backlog: d.Backlog, OldestUndelivered: d.OldestUndelivered, Dropped: d.Dropped,
		},
	}
}
