package rest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// Maestro's error codes (the number in "maestro-N" and in the error href).
const (
	CodeForbidden  = 4
	CodeConflict   = 6
	CodeNotFound   = 7
	CodeValidation = 8
	CodeGeneral    = 9
	CodeBadRequest = 17
	CodeSearch     = 21
	// CodeUnauthenticated is Maestro's "account authentication could not
	// be verified" (HTTP 401).
	CodeUnauthenticated = 15
)

// OperationIDHeader carries the operation id of a request; a client may
// set it, otherwise the server makes one for each error.
const OperationIDHeader = "X-Operation-ID"

// Error is an API error: the HTTP status, Maestro code and reason.
type Error struct {
	Status int
	Code   int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func errorf(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, CodeBadRequest, format, args...)
}

// fromError maps store, validation and search errors to an API error.
func fromError(err error) *Error {
	var (
		ae  *Error
		ve  validate.Errors
		se  *search.Error
		oe  *search.OrderError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		return errorf(http.StatusBadRequest, CodeValidation, "%s", ve.Error())
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, CodeSearch, "%s", se.Error())
	case errors.As(err, &oe):
		return errorf(http.StatusBadRequest, CodeBadRequest, "%s", oe.Error())
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, CodeValidation,
			"request body: larger than %d bytes (a bundle's manifests may total %s)", mbe.Limit, limits.Human(limits.BundleSpecBytes))
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%s", err.Error())
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "%s", err.Error())
	case errors.Is(err, store.ErrInvalid):
		return errorf(http.StatusBadRequest, CodeValidation, "%s", err.Error())
	case errors.Is(err, auth.ErrForbidden):
		return errorf(http.StatusForbidden, CodeForbidden, "%s", err.Error())
	}
	return nil
}

// fail writes the error response for err. Unclassified errors are logged
// and answered with a 500 that does not leak their text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := fromError(err)
	opID := operationID(r)
	if ae == nil {
		h.log.Error("rest: internal error", "method", r.Method, "path", r.URL.Path, "operation_id", opID, "err", err)
		ae = errorf(http.StatusInternalServerError, CodeGeneral,
			"internal error; the server log has the details under operation id %s", opID)
	}
	writeError(w, ae, opID)
}

// WriteError writes a Maestro error body (for the server's own answers
// outside the API, such as 401).
func WriteError(w http.ResponseWriter, r *http.Request, status, code int, reason string) {
	writeError(w, errorf(status, code, "%s", reason), operationID(r))
}

func writeError(w http.ResponseWriter, ae *Error, opID string) {
	code := strconv.Itoa(ae.Code)
	body := api.Error{
		Kind:        api.KindError,
		ID:          code,
		Href:        api.BasePath + "/errors/" + code,
		Code:        "maestro-" + code,
		Reason:      ae.Reason,
		OperationID: opID,
	}
	w.Header().Set(OperationIDHeader, opID)
	writeJSON(w, ae.Status, &body)
}

func operationID(r *http.Request) string {
	if id := r.Header.Get(OperationIDHeader); id != "" && len(id) <= 64 {
		return id
	}
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// noRoute answers a request no route matches: 404, or 405 with Allow when
// the path exists for other methods.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	inner, _ := h.mux.Handler(r)
	rec := &recorder{header: http.Header{}}
	inner.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeError(w, errorf(http.StatusMethodNotAllowed, CodeBadRequest,
			"method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")), operationID(r))
	case http.StatusNotFound, 0:
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no such path: %s", r.URL.Path), operationID(r))
	default: // redirects to the canonical path
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
	}
}

// recorder captures a small response (the mux's own 404/405/redirects).
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
