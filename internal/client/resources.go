package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/baton-dev/baton/pkg/api"
)

const (
	consumersPath = "/consumers"
	bundlesPath   = "/resource-bundles"
)

// ListConsumers returns one page of consumers.
func (c *Client) ListConsumers(ctx context.Context, o ListOptions) (*api.List[api.Consumer], error) {
	var l api.List[api.Consumer]
	return &l, c.do(ctx, http.MethodGet, consumersPath, o.query(), nil, &l)
}

// AllConsumers returns every consumer matching o.Search, following pages.
func (c *Client) AllConsumers(ctx context.Context, o ListOptions) ([]api.Consumer, error) {
	return all(ctx, o, c.ListConsumers)
}

// GetConsumer returns the consumer with the given id.
func (c *Client) GetConsumer(ctx context.Context, id string) (*api.Consumer, error) {
	var out api.Consumer
	return &out, c.do(ctx, http.MethodGet, consumersPath+"/"+url.PathEscape(id), nil, nil, &out)
}

// ConsumerByName finds a consumer by name (by search, which Maestro serves
// too). An unknown name is an *Error with status 404.
func (c *Client) ConsumerByName(ctx context.Context, name string) (*api.Consumer, error) {
	l, err := c.ListConsumers(ctx, ListOptions{Search: "name=" + Quote(name), Size: 2})
	if err != nil {
		return nil, err
	}
	for i := range l.Items {
		if l.Items[i].Name == name {
			return &l.Items[i], nil
		}
	}
	return nil, &Error{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: consumersPath,
		Reason: fmt.Sprintf("consumer %q not found", name)}
}

// CreateConsumer creates a consumer from its name and labels.
func (c *Client) CreateConsumer(ctx context.Context, in api.Consumer) (*api.Consumer, error) {
	body := map[string]any{"name": in.Name}
	if len(in.Labels) > 0 {
		body["labels"] = in.Labels
	}
	var out api.Consumer
	return &out, c.do(ctx, http.MethodPost, consumersPath, nil, body, &out)
}

// PatchConsumerLabels replaces the labels of a consumer.
func (c *Client) PatchConsumerLabels(ctx context.Context, id string, labels map[string]string) (*api.Consumer, error) {
	var out api.Consumer
	body := map[string]any{"labels": labels}
	return &out, c.do(ctx, http.MethodPatch, consumersPath+"/"+url.PathEscape(id), nil, body, &out)
}

// DeleteConsumer deletes a consumer; the server refuses while it has bundles.
func (c *Client) DeleteConsumer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, consumersPath+"/"+url.PathEscape(id), nil, nil, nil)
}

// DecommissionConsumer removes a consumer with every bundle it has
// (DELETE …?cascade=orphan, admin only): the bundles are finalized without
// the agent, their objects stay in the cluster, the agent is refused.
func (c *Client) DecommissionConsumer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, consumersPath+"/"+url.PathEscape(id), url.Values{"cascade": {"orphan"}}, nil, nil)
}

// ResyncConsumer asks the server to have the consumer's agent re-report now.
func (c *Client) ResyncConsumer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, consumersPath+"/"+url.PathEscape(id)+"/resync", nil, nil, nil)
}

// ListBundles returns one page of resource bundles.
func (c *Client) ListBundles(ctx context.Context, o ListOptions) (*api.List[api.ResourceBundle], error) {
	var l api.List[api.ResourceBundle]
	return &l, c.do(ctx, http.MethodGet, bundlesPath, o.query(), nil, &l)
}

// AllBundles returns every bundle matching o.Search, following pages.
func (c *Client) AllBundles(ctx context.Context, o ListOptions) ([]api.ResourceBundle, error) {
	return all(ctx, o, c.ListBundles)
}

// GetBundle returns the bundle with the given id.
func (c *Client) GetBundle(ctx context.Context, id string) (*api.ResourceBundle, error) {
	var out api.ResourceBundle
	return &out, c.do(ctx, http.MethodGet, bundlesPath+"/"+url.PathEscape(id), nil, nil, &out)
}

// BundleByName finds a bundle by name, in one consumer when consumer is not
// empty. A name matches the bundle's name, else its id, else its
// metadata.name (the work name), so both baton names and Maestro's (where
// name is the id) work. No match is an
// *Error with status 404; several matches (in different consumers) are an
// *Error with status 409 that asks for a consumer.
func (c *Client) BundleByName(ctx context.Context, consumer, name string) (*api.ResourceBundle, error) {
	search := "name=" + Quote(name)
	if consumer != "" {
		search += " and consumer_name=" + Quote(consumer)
	}
	l, err := c.ListBundles(ctx, ListOptions{Search: search, Size: 10})
	if err != nil {
		return nil, err
	}
	if len(l.Items) == 0 {
		return c.bundleByIDOrWorkName(ctx, consumer, name)
	}
	if len(l.Items) > 1 {
		return nil, &Error{StatusCode: http.StatusConflict, Method: http.MethodGet, Path: bundlesPath,
			Reason: fmt.Sprintf("bundle %q exists in %d consumers; choose one with --consumer", name, len(l.Items))}
	}
	return &l.Items[0], nil
}

// bundleByIDOrWorkName finds a bundle whose id or metadata.name is name.
// On Maestro a bundle's name is its id and the work name only in metadata,
// which the search language does not reach: the consumer's bundles (or all)
// are listed and matched here.
func (c *Client) bundleByIDOrWorkName(ctx context.Context, consumer, name string) (*api.ResourceBundle, error) {
	if b, err := c.GetBundle(ctx, name); err == nil && (consumer == "" || b.ConsumerName == consumer) {
		return b, nil
	}
	search := ""
	if consumer != "" {
		search = "consumer_name=" + Quote(consumer)
	}
	all, err := c.AllBundles(ctx, ListOptions{Search: search})
	if err != nil {
		return nil, err
	}
	var found []api.ResourceBundle
	for _, b := range all {
		if b.Metadata.Name == name {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 0:
		return nil, &Error{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: bundlesPath,
			Reason: notFoundReason(consumer, name)}
	case 1:
		return &found[0], nil
	}
	return nil, &Error{StatusCode: http.StatusConflict, Method: http.MethodGet, Path: bundlesPath,
		Reason: fmt.Sprintf("bundle %q exists in %d consumers; choose one with --consumer", name, len(found))}
}

func notFoundReason(consumer, name string) string {
	if consumer == "" {
		return fmt.Sprintf("bundle %q not found", name)
	}
	return fmt.Sprintf("bundle %q not found in consumer %q", name, consumer)
}

// CreateBundle creates a bundle (baton's POST /resource-bundles).
func (c *Client) CreateBundle(ctx context.Context, b *api.ResourceBundle) (*api.ResourceBundle, error) {
	var out api.ResourceBundle
	return &out, c.do(ctx, http.MethodPost, bundlesPath, nil, writable(b), &out)
}

// UpdateBundle replaces a bundle's metadata and spec. b.Version is the
// version the caller read: a newer one on the server is a 409 conflict.
func (c *Client) UpdateBundle(ctx context.Context, id string, b *api.ResourceBundle) (*api.ResourceBundle, error) {
	var out api.ResourceBundle
	return &out, c.do(ctx, http.MethodPut, bundlesPath+"/"+url.PathEscape(id), nil, writable(b), &out)
}

// DeleteBundle asks for a bundle's deletion; it disappears once the agent
// confirms removal.
func (c *Client) DeleteBundle(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, bundlesPath+"/"+url.PathEscape(id), nil, nil, nil)
}

// OrphanBundle finalizes a bundle without its agent (DELETE …?orphan=true,
// admin only): the server forgets it; the agent drops it and leaves its
// objects in place.
func (c *Client) OrphanBundle(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, bundlesPath+"/"+url.PathEscape(id), url.Values{"orphan": {"true"}}, nil, nil)
}

// ResyncBundle asks the server to have the bundle's agent re-report it now.
func (c *Client) ResyncBundle(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, bundlesPath+"/"+url.PathEscape(id)+"/resync", nil, nil, nil)
}

// bundleInput is the writable part of a bundle, as POST and PUT take it.
type bundleInput struct {
	Name            string         `json:"name,omitempty"`
	ConsumerName    string         `json:"consumer_name"`
	Version         int64          `json:"version,omitempty"`
	Metadata        api.ObjectMeta `json:"metadata"`
	Manifests       any            `json:"manifests"`
	ManifestConfigs any            `json:"manifest_configs,omitempty"`
	DeleteOption    any            `json:"delete_option,omitempty"`
	Executor        any            `json:"executor,omitempty"`
}

func writable(b *api.ResourceBundle) bundleInput {
	in := bundleInput{Name: b.Name, ConsumerName: b.ConsumerName, Version: b.Version,
		Metadata: b.Metadata, Manifests: b.Manifests}
	if len(b.ManifestConfigs) > 0 {
		in.ManifestConfigs = b.ManifestConfigs
	}
	if b.DeleteOption != nil {
		in.DeleteOption = b.DeleteOption
	}
	if b.Executor != nil {
		in.Executor = b.Executor
	}
	return in
}

// maxPages bounds paging so a server that ignores page cannot loop forever.
const maxPages = 10000

func all[T any](ctx context.Context, o ListOptions, list func(context.Context, ListOptions) (*api.List[T], error)) ([]T, error) {
	if o.Size == 0 {
		o.Size = 500
	}
	var out []T
	for page := 1; page <= maxPages; page++ {
		o.Page = page
		l, err := list(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if len(l.Items) == 0 || len(out) >= l.Total {
			break
		}
	}
	return out, nil
}
