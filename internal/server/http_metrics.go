package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests and measures their latency by route pattern
// and status code.
//
// The same observations are exported under Maestro's names too
// (rest_api_inbound_request_count, rest_api_inbound_request_duration, with
// Maestro's labels method, path and code), so Maestro's dashboards and SLO
// rules work unchanged; path is the route pattern ("/api/maestro/v1/
// resource-bundles/{id}"), never the raw path.
type httpMetrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	maestroRequests *prometheus.CounterVec
	maestroDuration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "baton_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		maestroRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rest_api_inbound_request_count",
			Help: "HTTP requests by method, route path and status code (Maestro's name).",
		}, []string{"method", "path", "code"}),
		maestroDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rest_api_inbound_request_duration",
			Help:    "HTTP request latency in seconds by method, route path and status code (Maestro's name).",
			Buckets: []float64{.1, 1, 10, 30},
		}, []string{"method", "path", "code"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.maestroRequests, m.maestroDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// wrap measures every request served by next; route names the request's
// route pattern (never the raw path, to bound label cardinality).
func (m *httpMetrics) wrap(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := route(r)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			c := strconv.Itoa(code)
			took := time.Since(start).Seconds()
			m.requests.WithLabelValues(rt, c).Inc()
			m.duration.WithLabelValues(rt, c).Observe(took)
			_, path, ok := strings.Cut(rt, " ")
			if !ok {
				path = rt
			}
			m.maestroRequests.WithLabelValues(r.Method, path, c).Inc()
			m.maestroDuration.WithLabelValues(r.Method, path, c).Observe(took)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status code. Unwrap lets http.ResponseController
// reach the underlying writer (Flush for streaming handlers).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for handlers that type-assert it.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
