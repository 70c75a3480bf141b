package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/pkg/api"
)

// Event types of the watch stream.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
	// EventError ends a stream the server dropped; its object is an error body.
	EventError = "ERROR"
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
	// Resume reopens a stream the server ended, after the last seq received.
	Resume bool
}

// maxEventLine bounds one event line (a bundle is at most 500 KiB of manifests plus status).
const maxEventLine = 8 << 20

// Watch opens the bundle watch stream. The returned channel delivers events
// in stream order and is closed when ctx ends or the stream ends; in the
// latter case the last event carries the reason in Err. With o.Resume, a
// stream the server ends is reopened after the last seq received (at most
// MaxResumes times in a row without an event in between), so a watcher that
// fell behind and was dropped misses nothing. Connection and HTTP errors
// before the first stream starts are returned directly.
func (c *Client) Watch(ctx context.Context, o WatchOptions) (<-chan Event, error) {
	resp, err := c.openWatch(ctx, o)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		var openErr error
		for failures := 0; ; {
			last, n, err := c.stream(ctx, resp, openErr, ch)
			if ctx.Err() != nil {
				return
			}
			if n > 0 {
				failures = 0
				o.Since = last
			}
			if !o.Resume || failures >= MaxResumes || terminal(openErr) {
				select {
				case ch <- Event{Err: err}:
				case <-ctx.Done():
				}
				return
			}
			failures++
			select {
			case <-time.After(resumeBackoff.Delay(failures)):
			case <-ctx.Done():
				return
			}
			resp, openErr = c.openWatch(ctx, o)
		}
	}()
	return ch, nil
}

// MaxResumes bounds consecutive reconnects of a resuming watch.
const MaxResumes = 5

// resumeBackoff spaces the reconnects of a resuming watch.
var resumeBackoff = backoff.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Factor: 2, Jitter: 0.25}

// terminal reports whether a reopen failed for good: the server refused the
// request itself (4xx), so repeating it cannot help.
func terminal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode < 500
}

func (c *Client) openWatch(ctx context.Context, o WatchOptions) (*http.Response, error) {
	q := url.Values{"watch": {"true"}}
	if o.Since >= 0 {
		q.Set("since", fmt.Sprint(o.Since))
	}
	if o.Search != "" {
		q.Set("search", o.Search)
	}
	return c.send(ctx, http.MethodGet, bundlesPath, q, nil)
}

// stream copies the events of one response to ch and returns the last seq
// sent, how many events were sent and why the stream ended. A failed
// reopen (openErr) ends at once.
func (c *Client) stream(ctx context.Context, resp *http.Response, openErr error, ch chan<- Event) (last int64, n int, err error) {
	if openErr != nil {
		return 0, 0, fmt.Errorf("watch: reconnecting: %w", openErr)
	}
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
			return last, n, fmt.Errorf("watch: decoding event: %w", err)
		}
		if ev.Type == EventError {
			// The server dropped the stream (this client fell behind); resume.
			return last, n, fmt.Errorf("watch: the server dropped the stream: this watcher fell behind")
		}
		select {
		case ch <- ev:
			last, n = ev.Seq, n+1
		case <-ctx.Done():
			return last, n, ctx.Err()
		}
	}
	if err := sc.Err(); err != nil {
		return last, n, fmt.Errorf("watch: %w", err)
	}
	return last, n, fmt.Errorf("watch: server closed the stream")
}
