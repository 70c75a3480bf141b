package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	freshnesstracker "github.com/baton-dev/baton/internal/freshness"
	"github.com/baton-dev/baton/internal/hub"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/replica"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/watch"
	"github.com/baton-dev/baton/internal/webhook"
)

// linkOptions configure the agent link of `baton server`: the gRPC
// endpoints, spec delivery, status ingest, freshness and watch.
type linkOptions struct {
	grpc             grpc.Config
	heartbeatTimeout time.Duration
	resendAfter      time.Duration
	webhooks         webhook.Options
	freshEvery       time.Duration
	helloRate        float64
	helloBurst       int
}

func init() {
	registerServerExtension(func() ServerExtension {
		o := &linkOptions{}
		return ServerExtension{Name: "agent link", Flags: o.flags, Apply: o.apply}
	})
}

func (o *linkOptions) flags(fs *pflag.FlagSet) {
	o.grpc.BindFlags(fs)
	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", hub.DefaultHeartbeatTimeout,
		"how long an agent may stay silent before its bundles turn Stale/AgentDisconnected")
	fs.DurationVar(&o.resendAfter, "resend-after", hub.DefaultResendTimeout,
		"how long a spec waits for the agent's acknowledgement before it is sent again")
	fs.DurationVar(&o.freshEvery, "freshness-interval", freshnesstracker.DefaultInterval,
		"how often every bundle's freshness is re-evaluated (metrics; freshness changes for watchers and webhooks)")
	fs.DurationVar(&o.webhooks.Timeout, "webhook-timeout", 5*time.Second, "how long one webhook delivery may take")
	fs.DurationVar(&o.webhooks.MaxBackoff, "webhook-max-backoff", 10*time.Second, "longest wait between attempts of a failing webhook delivery")
	fs.IntVar(&o.webhooks.MaxBacklog, "webhook-max-backlog", 10_000, "undelivered events kept per subscription; the oldest beyond are dropped")
	fs.Float64Var(&o.helloRate, "hello-rate", hub.DefaultHelloRate,
		"agent Hellos resynchronised per second after --hello-burst (a restart's reconnecting fleet waits its turn; 0: no limit)")
	fs.IntVar(&o.helloBurst, "hello-burst", hub.DefaultHelloBurst, "agent Hellos resynchronised at once before --hello-rate applies")
}

// webhookStore is what webhooks and bundle history need of the store
// (sqlstore.Store).
type webhookStore interface {
	webhook.Store
	webhook.SubscriptionStore
	TouchBundles(ctx context.Context, ids []string) error
	BundleHistory(ctx context.Context, id string, limit int) ([]store.Change, error)
}

func (o *linkOptions) apply(ctx context.Context, st store.Store, log *slog.Logger, opts *server.Options) error {
	broker := watch.New(st, watch.WithLogger(log))
	topts := []freshnesstracker.Option{freshnesstracker.WithLogger(log), freshnesstracker.WithHeartbeatTimeout(o.heartbeatTimeout),
		freshnesstracker.WithInterval(o.freshEvery), freshnesstracker.WithLeading(leading(opts.Replica))}
	ws, hasWebhooks := st.(webhookStore)
	if hasWebhooks {
		// A verdict that moves without a write (the agent went silent)
		// becomes a change, so watchers and webhooks see it.
		topts = append(topts, freshnesstracker.WithTransitions(func(ctx context.Context, ids []string) {
			if err := ws.TouchBundles(ctx, ids); err != nil {
				log.Warn("freshness: log transitions", "bundles", len(ids), "err", err)
				return
			}
			broker.Kick()
		}))
	}
	tracker, err := freshnesstracker.NewTracker(st, opts.Registry, topts...)
	if err != nil {
		return err
	}
	hopts := []hub.Option{
		hub.WithLogger(log), hub.WithRegisterer(opts.Registry),
		hub.WithHeartbeatTimeout(o.heartbeatTimeout), hub.WithResendTimeout(o.resendAfter),
		hub.WithChangeNotifier(broker.Kick), hub.WithHelloRate(o.helloRate, o.helloBurst),
		// Verdicts read right after a connect or disconnect see it.
		hub.WithAgentStateNotifier(tracker.Forget),
	}
	if opts.Replica != nil {
		hopts = append(hopts, hub.WithServerID(opts.Replica.ID()), hub.WithLiveReplicas(opts.Replica.Live))
	}
	h, err := hub.New(st, hopts...)
	if err != nil {
		return err
	}
	if hasWebhooks {
		wo := o.webhooks
		wo.Logger = log
		wo.Leading = leading(opts.Replica)
		m := webhook.New(ws, broker, tracker, wo)
		if err := m.Register(opts.Registry); err != nil {
			return err
		}
		opts.Subscriptions = webhook.Service{SubscriptionStore: ws, M: m}
		opts.History = ws.BundleHistory
		opts.Runnables = append(opts.Runnables, m)
	}
	cfg := o.grpc
	if a, ok := opts.Auth.(grpc.Authenticator); ok {
		cfg.Auth = a
	}
	for _, addr := range []struct {
		flag string
		v    *string
	}{{"--grpc-addr", &cfg.SourceAddr}, {"--agent-addr", &cfg.AgentAddr}} {
		if *addr.v, err = server.SafeAddr(addr.flag, *addr.v, cfg.Auth != nil, opts.InsecureAllowUnauthenticated); err != nil {
			return err
		}
	}
	cfg.Agents, cfg.Bundles, cfg.Changes = h, st, broker
	// Read at each write: an extension applied later (MQTT) may lower the
	// transport limit.
	opts.UseTransport(limits.GRPC)
	cfg.Transport = func() limits.Transport { return opts.Transport }
	cfg.Notify, cfg.SequenceID = h.Notify, h.NextSequenceID
	cfg.Logger = log
	cfg.Registerer = opts.Registry
	gs, err := grpc.New(cfg)
	if err != nil {
		return err
	}
	opts.Freshness = tracker.Source()
	opts.OnSpecWrite = func(consumer string) { h.Notify(consumer); broker.Kick() }
	opts.Resync = h.RequestStatus
	opts.Watch = func(render func(*http.Request, store.Bundle) any) http.Handler {
		return watch.NewHandler(broker, st, render, watch.WithHandlerLogger(log))
	}
	if err := registerWatchMetrics(opts.Registry, broker); err != nil {
		return err
	}
	opts.Runnables = append(opts.Runnables, broker, h, tracker, drainFirst(h, gs))
	if l, ok := st.(listener); ok {
		// Writes through other replicas (PostgreSQL NOTIFY) reach this
		// replica's sessions and watchers at once.
		opts.Runnables = append(opts.Runnables, server.RunnableFunc(func(ctx context.Context) error {
			return l.Listen(ctx, sqlstore.Listeners{Outbox: h.Notify, Changes: broker.Kick})
		}))
	}
	return nil
}

// drainFirst runs the agent endpoints; when the server stops, the hub is
// told to drain before they close, so the sessions that end hand their
// consumers over (the agents reconnect to another replica) instead of
// recording them disconnected.
func drainFirst(h *hub.Hub, r server.Runnable) server.Runnable {
	return server.RunnableFunc(func(ctx context.Context) error {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(ctx, func() { h.Drain(); cancel() })
		defer stop()
		return r.Start(rctx)
	})
}

// listener is a store that tells about writes of other replicas.
type listener interface {
	Listen(ctx context.Context, l sqlstore.Listeners) error
}

// leading gates the cluster duties on the replica's duty lease (always, for
// a lone process).
func leading(r *replica.Replica) func() bool {
	if r == nil {
		return func() bool { return true }
	}
	return r.Leading
}

// registerWatchMetrics exports the watch fan-out's subscribers and the
// changes they have not taken yet.
func registerWatchMetrics(reg prometheus.Registerer, b *watch.Broker) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "baton_watch_subscribers", Help: "Open change subscriptions (REST watches, gRPC source subscriptions).",
		}, func() float64 { n, _ := b.Backlog(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "baton_watch_backlog",
			Help: "Changes published to subscribers and not taken yet, summed over subscribers; one that falls " +
				fmt.Sprint(watch.DefaultQueueSize) + " behind is dropped and relists.",
		}, func() float64 { _, q := b.Backlog(); return float64(q) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("watch metrics: %w", err)
		}
	}
	return nil
}
