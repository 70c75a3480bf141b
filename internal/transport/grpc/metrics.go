package grpc

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics are the gRPC endpoint's Prometheus metrics under Maestro's names,
// so Maestro's dashboards and SLO rules ("99% of gRPC calls < 500 ms") work
// unchanged (docs/maestro-compat.md lists the mapping).
type metrics struct {
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	sources   *prometheus.GaugeVec
	received  *prometheus.CounterVec
	sent      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_processed_total",
			Help: "gRPC calls completed on the source and agent ports, by type, service, method and code.",
		}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_processed_duration_seconds",
			Help:    "Latency of unary gRPC calls (Publish), by service, method and code.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
		sources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "grpc_server_registered_source_clients",
			Help: "Subscribe streams of source clients open now, by source.",
		}, []string{"source"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudevents_received_total",
			Help: "CloudEvents received from source clients, by source and event type.",
		}, []string{"source", "type"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudevents_sent_total",
			Help: "CloudEvents queued to source clients, by source and event type.",
		}, []string{"source", "type"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.processed, m.duration, m.sources, m.received, m.sent} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	service, method, _ = strings.Cut(full, "/")
	return service, method
}

func (m *metrics) unary(ctx context.Context, req any, info *ggrpc.UnaryServerInfo, next ggrpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := next(ctx, req)
	svc, meth := splitMethod(info.FullMethod)
	code := status.Code(err).String()
	m.processed.WithLabelValues("unary", svc, meth, code).Inc()
	m.duration.WithLabelValues("unary", svc, meth, code).Observe(time.Since(start).Seconds())
	return resp, err
}

func (m *metrics) stream(srv any, ss ggrpc.ServerStream, info *ggrpc.StreamServerInfo, next ggrpc.StreamHandler) error {
	err := next(srv, ss)
	svc, meth := splitMethod(info.FullMethod)
	m.processed.WithLabelValues("server_stream", svc, meth, status.Code(err).String()).Inc()
	return err
}

func (m *metrics) options() []ggrpc.ServerOption {
	return []ggrpc.ServerOption{ggrpc.ChainUnaryInterceptor(m.unary), ggrpc.ChainStreamInterceptor(m.stream)}
}
