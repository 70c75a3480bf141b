package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/store/sqlstore"
)

func init() { register(newMigrateCmd) }

func newMigrateCmd() *cobra.Command {
	o := &serverOptions{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database schema migrations and list them",
		Long: `Apply every pending schema migration to the server's database and print the
migrations applied, oldest first. ` + "`baton server`" + ` applies them at start too; run
this ahead of an upgrade to migrate while the old server is stopped, or to
check what a database needs.`,
		Example: `  # SQLite in ./data (or $BATON_DATA_DIR)
  baton migrate

  # PostgreSQL
  baton migrate --db-url 'postgres://baton@db:5432/baton?sslmode=require'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := serverLogger(logLevel)
			if err != nil {
				return err
			}
			return o.migrate(cmd.Context(), cmd.OutOrStdout(), o.storeConfig(log))
		},
	}
	o.addStoreFlags(cmd.Flags())
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}

func (o *serverOptions) migrate(ctx context.Context, out io.Writer, cfg sqlstore.Config) error {
	applied, err := sqlstore.Migrate(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	version, err := sqlstore.MigrationVersion()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range applied {
		fmt.Fprintf(out, "applied %s\n", name)
	}
	if len(applied) == 0 {
		fmt.Fprintf(out, "database is up to date (schema version %d)\n", version)
		return nil
	}
	fmt.Fprintf(out, "database is at schema version %d\n", version)
	return nil
}
