package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/baton-dev/baton/internal/auth/authn"
	"github.com/baton-dev/baton/internal/replica"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
)

func init() { register(newServerCmd) }

// ServerExtension adds a part to `baton server` without editing this file
// (the agent transport, the watch endpoint). Flags registers its flags;
// Apply runs once the store is open and may set Options fields (append to
// Handlers and Runnables, set Freshness). Both may be nil.
type ServerExtension struct {
	Name  string
	Flags func(fs *pflag.FlagSet)
	Apply func(ctx context.Context, st store.Store, log *slog.Logger, opts *server.Options) error
}

var serverExtensions []func() ServerExtension

// registerServerExtension adds the extension newExt makes to every `baton
// server` command built after the call; call it from an init function.
// newExt runs once per command, so each command has its own option values.
func registerServerExtension(newExt func() ServerExtension) {
	serverExtensions = append(serverExtensions, newExt)
}

type serverOptions struct {
	dataDir  string
	dbURL    string
	httpAddr string
	source   string
	logLevel string
	shutdown time.Duration
	// serverID names this replica (default: host name and a random suffix);
	// leaseTTL is how long its leases last unrenewed.
	serverID   string
	leaseTTL   time.Duration
	healthAddr string
	exts       []ServerExtension

	authConfig      string
	tlsCert, tlsKey string
	insecure        bool
	readTimeout     time.Duration
	pprof           bool
}

// serverDataDir is $BATON_DATA_DIR, else ./data.
func serverDataDir() string {
	if d := os.Getenv("BATON_DATA_DIR"); d != "" {
		return d
	}
	return "./data"
}

func newServerCmd() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the baton server: the Maestro-compatible REST API and the agents' endpoint",
		Long: `Run the baton server. It keeps consumers and resource bundles in a database,
serves the Maestro-compatible REST API under /api/maestro/v1, delivers bundles
to the agents and records the live status they report.

The database is SQLite in --data-dir (the default: nothing else to run) or
PostgreSQL with --db-url (for production and for several replicas). Pending
schema migrations are applied at start.

The HTTP address also serves /livez (the process serves; /healthz is the
same), /readyz (the database answers, the schema is migrated and this
replica's lease is held; 503 while shutting down) and /metrics (Prometheus);
--health-addr serves the probes on a port of their own too.

Replicas: any number of servers with the same --db-url (PostgreSQL) form
one service. Each has a unique --server-id and a lease in the database; an
agent may connect to any of them, and the one holding its session delivers
its bundles. Writes through any replica reach the owner at once (LISTEN/
NOTIFY); one replica at a time runs the cluster duties (freshness metrics,
change-log pruning). On SIGTERM a replica stops accepting agents, hands
their sessions over (the agents reconnect to another replica) and exits.

With --enable-pprof the HTTP address also serves the Go runtime profiles
under /debug/pprof/, to administrators connecting from the loopback
interface only (in a cluster: kubectl port-forward).`,
		Example: `  # Keep data in ./data (SQLite) and serve REST on :8000
  baton server

  # SQLite in another directory, REST on port 8002
  BATON_DATA_DIR=/var/lib/baton baton server --http-addr :8002

  # PostgreSQL
  baton server --db-url 'postgres://baton@db:5432/baton?sslmode=require'

  # Three replicas on one PostgreSQL, probes on their own port
  baton server --db-url "$DB" --http-addr :8000 --health-addr :8080 --server-id baton-a

  # Profile a running server (started with --enable-pprof) from the same host
  go tool pprof 'http://127.0.0.1:8000/debug/pprof/profile?seconds=20'

  # Then, for example
  curl -s localhost:8000/api/maestro/v1/consumers -d '{"name":"mgmt-1"}'
  curl -sG localhost:8000/api/maestro/v1/resource-bundles --data-urlencode "search=consumer_name='mgmt-1'" | jq`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	o.addStoreFlags(f)
	f.StringVar(&o.httpAddr, "http-addr", server.DefaultHTTPAddr, "address of REST, /healthz, /readyz and /metrics")
	f.StringVar(&o.source, "source", "", "source of bundles created over REST without one (default \"baton\")")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "how long to wait for requests in flight when stopping")
	f.StringVar(&o.serverID, "server-id", "", "unique name of this replica in the database and agent state (default: the host name and a random suffix)")
	f.DurationVar(&o.leaseTTL, "replica-lease", replica.DefaultTTL, "how long this replica's leases last unrenewed: a replica silent for longer is gone and its agents are disconnected")
	f.StringVar(&o.healthAddr, "health-addr", "", "extra address serving only /livez, /healthz and /readyz (empty: the probes are on --http-addr only)")
	f.StringVar(&o.authConfig, "auth-config", "", "auth config file (YAML: tokens, clientCA, oidc, kubernetes; see docs/security.md); "+
		"without it the server authenticates nobody and listens on loopback only")
	f.StringVar(&o.tlsCert, "tls-cert", "", "certificate (PEM) of the REST listener; reloaded when the file changes. Empty serves plain HTTP")
	f.StringVar(&o.tlsKey, "tls-key", "", "key (PEM) of --tls-cert")
	f.BoolVar(&o.insecure, "insecure-allow-unauthenticated", false,
		"let a server without --auth-config listen on non-loopback addresses (anyone who reaches it is an admin)")
	f.DurationVar(&o.readTimeout, "http-read-timeout", server.DefaultHTTPLimits.ReadTimeout,
		"how long a client may take to send one whole request, body included")
	f.BoolVar(&o.pprof, "enable-pprof", false, "serve Go runtime profiles under /debug/pprof/ on the HTTP address, to administrators on loopback only")
	for _, newExt := range serverExtensions {
		e := newExt()
		o.exts = append(o.exts, e)
		if e.Flags != nil {
			e.Flags(f)
		}
	}
	return cmd
}

func (o *serverOptions) addStoreFlags(f *pflag.FlagSet) {
	f.StringVar(&o.dataDir, "data-dir", serverDataDir(), "directory of the SQLite database, used without --db-url ($BATON_DATA_DIR)")
	f.StringVar(&o.dbURL, "db-url", "", "PostgreSQL URL (postgres://user@host:5432/db?sslmode=...) ($"+EnvDBURL+", which keeps a password out of the command line); empty uses SQLite in --data-dir")
}

// EnvDBURL is the environment variable read when --db-url is not given.
const EnvDBURL = "BATON_DB_URL"

func (o *serverOptions) storeConfig(log *slog.Logger) sqlstore.Config {
	url := o.dbURL
	if url == "" {
		url = os.Getenv(EnvDBURL)
	}
	return sqlstore.Config{URL: url, DataDir: o.dataDir, Logger: log}
}

// setupAuth loads --auth-config into opts, or logs that the server runs
// unauthenticated.
func (o *serverOptions) setupAuth(ctx context.Context, log *slog.Logger, opts *server.Options) error {
	if o.authConfig == "" {
		if o.insecure {
			log.Warn("server: no --auth-config and --insecure-allow-unauthenticated: anyone who reaches the listeners is an admin")
		} else {
			log.Warn("server: no --auth-config: every caller is an admin; listening on loopback addresses only")
		}
		return nil
	}
	a, err := authn.New(ctx, o.authConfig, authn.Options{Logger: log, Registerer: opts.Registry})
	if err != nil {
		return &ExitError{Code: 2, Msg: "--auth-config: " + err.Error()}
	}
	opts.Auth, opts.ClientCAs = a, a.ClientCAs
	opts.Runnables = append(opts.Runnables, a)
	log.Info("server: authentication on", "auth_config", o.authConfig)
	return nil
}

func serverLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, &ExitError{Code: 2, Msg: fmt.Sprintf("--log-level: %v", err)}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func (o *serverOptions) run(ctx context.Context) error {
	log, err := serverLogger(o.logLevel)
	if err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, o.storeConfig(log))
	if err != nil {
		return fmt.Errorf("server: open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("server: close store", "err", err)
		}
	}()
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return &ExitError{Code: 2, Msg: "--tls-cert and --tls-key go together"}
	}
	id := o.serverID
	if id == "" {
		id = replica.DefaultID()
	}
	if err := replica.ValidateID(id); err != nil {
		return &ExitError{Code: 2, Msg: "--server-id: " + err.Error()}
	}
	if o.leaseTTL <= 0 {
		return &ExitError{Code: 2, Msg: fmt.Sprintf("--replica-lease %s: want a positive duration", o.leaseTTL)}
	}
	rep := replica.New(st, id, replica.WithTTL(o.leaseTTL), replica.WithLogger(log))
	opts := server.Options{
		HTTPAddr:                     o.httpAddr,
		HealthAddr:                   o.healthAddr,
		TLSCertFile:                  o.tlsCert,
		TLSKeyFile:                   o.tlsKey,
		Limits:                       server.HTTPLimits{ReadTimeout: o.readTimeout},
		InsecureAllowUnauthenticated: o.insecure,
		Store:                        st,
		Logger:                       log,
		Source:                       o.source,
		ShutdownTimeout:              o.shutdown,
		Registry:                     server.NewRegistry(),
		Replica:                      rep,
		Pprof:                        o.pprof,
		ReadyChecks: []server.ReadyCheck{
			{Name: "schema", Check: st.SchemaReady},
			{Name: "replica", Check: func(context.Context) error { return rep.Ready() }},
		},
		// The change log only serves watch resumption: keep the newest
		// 100,000 changes and the last hour. One replica prunes.
		Runnables: []server.Runnable{rep, sqlstore.NewPruner(st, sqlstore.PrunerOptions{Logger: log, Leading: rep.Leading})},
	}
	if err := o.setupAuth(ctx, log, &opts); err != nil {
		return err
	}
	for _, e := range o.exts {
		if e.Apply == nil {
			continue
		}
		if err := e.Apply(ctx, st, log, &opts); err != nil {
			return fmt.Errorf("server: %s: %w", e.Name, err)
		}
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	return srv.Start(ctx)
}
