// Package client is a typed client of baton's REST API, which is Maestro's
// REST API (/api/maestro/v1) plus baton's additions: bundle create and update,
// a watch stream and resync requests. It works against a Maestro server for
// everything Maestro serves.
//
// Every error a server answers with is an *Error carrying the HTTP status and
// the Maestro error body; a server that cannot be reached at all gives an
// *UnreachableError. A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/baton-dev/baton/pkg/api"
)

// DefaultTimeout bounds every request except watches.
const DefaultTimeout = 30 * time.Second

// Client talks to one baton (or Maestro) server.
type Client struct {
	server  string
	http    *http.Client
	timeout time.Duration
	token   string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (for TLS or tests). Its Timeout
// must be zero or watches end early; per-request timeouts come from WithTimeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithToken sends token as "Authorization: Bearer <token>" on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithTimeout sets the timeout of every request except watches.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client of the server at base URL server, e.g. http://localhost:8000.
func New(server string, opts ...Option) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want http://host:port or https://host:port", server)
	}
	c := &Client{server: strings.TrimRight(server, "/"), http: &http.Client{}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.server }

// Error is an error answer of the server: the HTTP status and the Maestro
// error body ({kind:"Error", code, reason}).
type Error struct {
	StatusCode int
	Method     string
	Path       string
	// Code and Reason come from the error body; Reason holds the body text
	// when the body is not a Maestro error.
	Code   string
	Reason string
}

func (e *Error) Error() string {
	msg := e.Reason
	if msg == "" {
		msg = fmt.Sprintf("%s %s failed", e.Method, e.Path)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		msg = "the server requires a token: give --token, set BATON_TOKEN or add token: to the config file (" + msg + ")"
	case http.StatusForbidden:
		msg = "the server refused this to your token's identity: " + msg + "; an admin can give you a token with the role it needs"
	}
	if e.Code != "" {
		return fmt.Sprintf("%s (HTTP %d, %s)", msg, e.StatusCode, e.Code)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return statusIs(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409 answer.
func IsConflict(err error) bool { return statusIs(err, http.StatusConflict) }

func statusIs(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == code
}

// UnreachableError is returned when no HTTP answer came back at all.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach baton server at %s: %v, is `baton server` running? (set --server or BATON_SERVER)", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ListOptions are Maestro's list parameters; zero values are left out.
type ListOptions struct {
	Page    int
	Size    int
	Search  string
	OrderBy string
	Fields  string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Page > 0 {
		q.Set("page", fmt.Sprint(o.Page))
	}
	if o.Size > 0 {
		q.Set("size", fmt.Sprint(o.Size))
	}
	if o.Search != "" {
		q.Set("search", o.Search)
	}
	if o.OrderBy != "" {
		q.Set("orderBy", o.OrderBy)
	}
	if o.Fields != "" {
		q.Set("fields", o.Fields)
	}
	return q
}

// Quote returns s as a single-quoted string literal of the search language.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns the response when its status is 2xx; any
// other status is turned into an *Error and the body closed.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	u := c.server + api.BasePath + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// baton's additions that Maestro's schema has no place for (consumer
	// agent, bundle source) are served only when asked; a Maestro server
	// ignores the header.
	req.Header.Set(api.ExtensionsHeader, "true")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctxErr)
		}
		return nil, &UnreachableError{Server: c.server, Err: unwrapURLError(err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp, method, path)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(resp *http.Response, method, path string) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{StatusCode: resp.StatusCode, Method: method, Path: path}
	var body api.Error
	if json.Unmarshal(data, &body) == nil && (body.Kind == api.KindError || body.Reason != "") {
		e.Code, e.Reason = body.Code, body.Reason
		return e
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	e.Reason = text
	return e
}
