package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/baton-dev/baton/pkg/api"
)

const subscriptionsPath = "/subscriptions"

// CreateSubscription creates a webhook subscription (name, url, secret,
// search, events, headers of in).
func (c *Client) CreateSubscription(ctx context.Context, in api.Subscription) (*api.Subscription, error) {
	body := map[string]any{"name": in.Name, "url": in.URL, "secret": in.Secret, "search": in.Search, "events": in.Events}
	if len(in.Headers) > 0 {
		body["headers"] = in.Headers
	}
	var out api.Subscription
	return &out, c.do(ctx, http.MethodPost, subscriptionsPath, nil, body, &out)
}

// ListSubscriptions returns every subscription with its delivery status.
func (c *Client) ListSubscriptions(ctx context.Context) ([]api.Subscription, error) {
	var l api.List[api.Subscription]
	return l.Items, c.do(ctx, http.MethodGet, subscriptionsPath, nil, nil, &l)
}

// GetSubscription returns a subscription by id or name.
func (c *Client) GetSubscription(ctx context.Context, idOrName string) (*api.Subscription, error) {
	var out api.Subscription
	return &out, c.do(ctx, http.MethodGet, subscriptionsPath+"/"+url.PathEscape(idOrName), nil, nil, &out)
}

// DeleteSubscription deletes a subscription by id or name.
func (c *Client) DeleteSubscription(ctx context.Context, idOrName string) error {
	return c.do(ctx, http.MethodDelete, subscriptionsPath+"/"+url.PathEscape(idOrName), nil, nil, nil)
}
