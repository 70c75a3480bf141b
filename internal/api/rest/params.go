package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
)

// Request body limits (internal/limits).
const (
	MaxBundleBody   = limits.BundleBodyBytes
	MaxConsumerBody = limits.ConsumerBodyBytes
)

// listParams are the parsed list query parameters.
type listParams struct {
	opts store.ListOptions
	// none is size=0: the answer has the total and no items.
	none   bool
	fields *projection // nil: whole objects
}

// parseList reads page, size, search, orderBy and fields. Unknown query
// parameters are ignored, as Maestro does.
func parseList(r *http.Request, fields search.Fields, topLevel map[string]bool) (listParams, error) {
	q := r.URL.Query()
	lp := listParams{opts: store.ListOptions{Page: 1, Size: DefaultPageSize}}
	var err error
	if v := q.Get("page"); v != "" {
		if lp.opts.Page, err = intParam("page", v, 1, 1<<30); err != nil {
			return lp, err
		}
	}
	if v := q.Get("size"); v != "" {
		if lp.opts.Size, err = intParam("size", v, math.MinInt32, math.MaxInt32); err != nil {
			return lp, err
		}
		switch {
		case lp.opts.Size == 0:
			lp.opts.Size, lp.none = 1, true // the store still counts the total
		case lp.opts.Size < 0 || lp.opts.Size > MaxPageSize:
			lp.opts.Size = MaxPageSize
		}
	}
	if lp.opts.Filter, err = search.Parse(q.Get("search"), fields); err != nil {
		return lp, err
	}
	if lp.opts.OrderBy, err = search.ParseOrder(q.Get("orderBy"), fields); err != nil {
		return lp, err
	}
	if v := q.Get("fields"); v != "" {
		if lp.fields, err = parseProjection(v, topLevel); err != nil {
			return lp, err
		}
	}
	return lp, nil
}

func intParam(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, badRequest("%s: %q is not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, badRequest("%s: %d is out of range %d..%d", name, n, lo, hi)
	}
	return n, nil
}

// decodeBody decodes a JSON request body into v: at most limit bytes, no
// unknown fields, exactly one JSON value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	data, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("request body: %v", err)
	}
	return data, nil
}

// decodeJSON decodes exactly one JSON value with no unknown fields.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("request body: unexpected data after the JSON object")
	}
	return nil
}

func bodyError(err error) error {
	var (
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("request body: empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body: malformed JSON: unexpected end")
	case errors.As(err, &se):
		return badRequest("request body: malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("request body: must be a JSON object, not %s", te.Value)
		}
		return badRequest("%s: must be %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("request body: unknown field %s", f)
	}
	return badRequest("request body: %v", err)
}
