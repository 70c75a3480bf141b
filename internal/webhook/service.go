package webhook

import (
	"context"

	"github.com/baton-dev/baton/internal/store"
)

// SubscriptionStore keeps subscriptions (sqlstore.Store).
type SubscriptionStore interface {
	CreateSubscription(ctx context.Context, s store.Subscription) (store.Subscription, error)
	ListSubscriptions(ctx context.Context) ([]store.Subscription, error)
	GetSubscription(ctx context.Context, idOrName string) (store.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
}

// Service is the REST API's view of subscriptions (rest.Subscriptions):
// the store's, with the manager told of every create and delete.
type Service struct {
	SubscriptionStore
	M *Manager
}

// CreateSubscription stores s and starts delivering to it.
func (s Service) CreateSubscription(ctx context.Context, sub store.Subscription) (store.Subscription, error) {
	out, err := s.SubscriptionStore.CreateSubscription(ctx, sub)
	if err == nil {
		s.M.Reload()
	}
	return out, err
}

// DeleteSubscription removes a subscription and stops its deliveries.
func (s Service) DeleteSubscription(ctx context.Context, id string) error {
	err := s.SubscriptionStore.DeleteSubscription(ctx, id)
	if err == nil {
		s.M.Reload()
	}
	return err
}

// State names a delivery record's state.
func (s Service) State(d store.DeliveryState) string { return s.M.State(d) }
