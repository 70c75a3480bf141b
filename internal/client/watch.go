package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/baton-dev/baton/pkg/api"
)

// Event types of the watch stream.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
)

// Event is one line of the watch stream. A final event with Err set tells
// why a stream ended before its context did.
type Event struct {
	Type   string             `json:"type"`
	Seq    int64              `json:"seq"`
	Object api.ResourceBundle `json:"object"`
	Err    error              `json:"-"`
}

// FromNow, as WatchOptions.Since, streams only changes made after the
// stream opened.
const FromNow int64 = -1

// WatchOptions select what a watch streams.
type WatchOptions struct {
	// Since resumes after this change sequence value: 0 replays every
	// change the server still has, FromNow (or any negative value) streams
	// only new changes.
	Since int64
	// Search filters bundles like the list search parameter.
	Search string
}

// maxEventLine bounds one event line (a bundle is at most 500 KiB of manifests plus status).
const maxEventLine = 8 << 20

// Watch opens the bundle watch stream. The returned channel delivers events
// in stream order and is closed when ctx ends or the stream ends; in the
// latter case the last event carries the reason in Err. Connection and HTTP
// errors before the stream starts are returned directly.
func (c *Client) Watch(ctx context.Context, o WatchOptions) (<-chan Event, error) {
	q := url.Values{"watch": {"true"}}
	if o.Since >= 0 {
		q.Set("since", fmt.Sprint(o.Since))
	}
	if o.Search != "" {
		q.Set("search", o.Search)
	}
	resp, err := c.send(ctx, http.MethodGet, bundlesPath, q, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal(line, &ev); err != nil {
				ev = Event{Err: fmt.Errorf("watch: decoding event: %w", err)}
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		err := sc.Err()
		if err == nil {
			err = fmt.Errorf("watch: server closed the stream")
		}
		select {
		case ch <- Event{Err: err}:
		case <-ctx.Done():
		}
	}()
	return ch, nil
}
