package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
)

func init() { register(newResyncCmd) }

func newResyncCmd() *cobra.Command {
	var consumer string
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "resync CONSUMER | bundle/NAME",
		Short: "Ask an agent to re-report the live state of its objects now",
		Long: `Ask the server to have an agent re-read and re-report every object of a
consumer, or of one bundle, now instead of at its next periodic resync. The
server answers at once (202 Accepted); watch the bundle or run baton doctor
to see the new report.`,
		Example: `  # Re-report everything of consumer mgmt-1
  baton resync mgmt-1

  # Re-report one bundle
  baton resync bundle/shared-ingress --consumer mgmt-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if kind, name, ok := strings.Cut(args[0], "/"); ok {
				k, err := resourceKind(kind)
				if err == nil && k == kindSubscription {
					err = fmt.Errorf("subscriptions are not resynced: their undelivered events are retried until delivered")
				}
				if err != nil {
					return err
				}
				if k == kindBundle {
					b, err := c.BundleByName(ctx, consumer, name)
					if err != nil {
						return err
					}
					if err := c.ResyncBundle(ctx, b.ID); err != nil {
						return fmt.Errorf("bundle %s: resync: %w%s", name, err, noResyncHint(err))
					}
					fmt.Fprintf(cmd.OutOrStdout(), "bundle/%s resync requested\n", name)
					return nil
				}
				args[0] = name
			}
			con, err := c.ConsumerByName(ctx, args[0])
			if err != nil {
				return err
			}
			if err := c.ResyncConsumer(ctx, con.ID); err != nil {
				return fmt.Errorf("consumer %s: resync: %w%s", con.Name, err, noResyncHint(err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "consumer/%s resync requested\n", con.Name)
			return nil
		},
	}
	flags = addClientFlags(cmd)
	cmd.Flags().StringVarP(&consumer, "consumer", "c", "", "consumer of the bundle (needed when the name is in several)")
	return cmd
}

// noResyncHint explains a 404 on a resync of something just found: the
// server has no resync endpoint.
func noResyncHint(err error) string {
	if client.IsNotFound(err) {
		return "; a Maestro server has no resync endpoint: restart its agent instead"
	}
	return ""
}
