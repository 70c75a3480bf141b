package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newDeleteCmd) }

func newDeleteCmd() *cobra.Command {
	var consumer, cascade string
	var orphan, yes bool
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "delete bundle|consumer|subscription NAME",
		Short: "Delete a resource bundle, a consumer or a webhook subscription",
		Long: `Delete a resource bundle or a consumer. A deleted bundle is marked deleting
and disappears once its agent confirms the removal of its objects. A
consumer can be deleted only when it has no bundles left.

Deletes that wait for an agent that will never come back end by an
explicit operator action (admin only; asks for confirmation unless --yes):
  --orphan          finalizes the bundle at once, in any state, without its
                    agent: the server forgets it; the agent, if it returns,
                    drops the bundle and leaves its objects in place
                    (unmanaged). The name can be created again at once.
  --cascade=orphan  decommissions a cluster: every bundle of the consumer
                    (pending, applied, deleting) is finalized that way, the
                    consumer is removed and its agent is refused from then on.`,
		Example: `  # Delete a bundle (its objects are removed as its delete option says)
  baton delete bundle shared-ingress --consumer dev

  # Delete a consumer without bundles
  baton delete consumer dev

  # A bundle stuck deleting because its cluster is gone: finalize it
  baton delete bundle shared-ingress --consumer dev --orphan

  # Decommission a cluster with everything on it, without a prompt
  baton delete consumer dev --cascade=orphan --yes

  # Stop a webhook subscription
  baton delete subscription dns`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := resourceKind(args[0])
			if err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[1]
			if err := checkOrphanFlags(kind, orphan, cascade); err != nil {
				return err
			}
			if kind == kindSubscription {
				if err := c.DeleteSubscription(ctx, name); err != nil {
					return fmt.Errorf("subscription %s: delete: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "subscription/%s deleted (its undelivered events with it)\n", name)
				return nil
			}
			if kind == kindConsumer {
				con, err := c.ConsumerByName(ctx, name)
				if err != nil {
					return err
				}
				if cascade != "" {
					return decommission(cmd, c, con, yes)
				}
				if err := c.DeleteConsumer(ctx, con.ID); err != nil {
					return fmt.Errorf("consumer %s: delete: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "consumer/%s deleted\n", name)
				return nil
			}
			b, err := c.BundleByName(ctx, consumer, name)
			if err != nil {
				return err
			}
			if orphan {
				return orphanBundle(cmd, c, b, yes)
			}
			if err := c.DeleteBundle(ctx, b.ID); err != nil {
				return fmt.Errorf("bundle %s: delete: %w", name, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), deleteOutcome(ctx, c, b))
			return nil
		},
	}
	flags = addClientFlags(cmd)
	cmd.Flags().StringVarP(&consumer, "consumer", "c", "", "consumer of the bundle (needed when the name is in several)")
	cmd.Flags().BoolVar(&orphan, "orphan", false, "bundle: finalize it now without its agent; its objects stay in the cluster, unmanaged (admin)")
	cmd.Flags().StringVar(&cascade, "cascade", "", "consumer: orphan decommissions it with all its bundles, leaving their objects; its agent is refused (admin)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (--orphan, --cascade)")
	return cmd
}

// deleteOutcome says what a bundle delete did: gone already, or marked
// deleting and waiting for its agent, whose connection it names.
func deleteOutcome(ctx context.Context, c *client.Client, b *api.ResourceBundle) string {
	after, err := c.GetBundle(ctx, b.ID)
	if client.IsNotFound(err) {
		return fmt.Sprintf("bundle/%s deleted", b.Name)
	}
	wait := fmt.Sprintf("bundle/%s marked deleting: it is removed once the agent of consumer %s confirms "+
		"it deleted the objects (delete option %s)", b.Name, b.ConsumerName, propagation(b))
	if err != nil || after.DeletedAt == nil {
		return wait
	}
	con, err := c.ConsumerByName(ctx, b.ConsumerName)
	if err == nil && (con.Agent == nil || !con.Agent.Connected) {
		return wait + "; that agent is not connected, so the bundle stays until it is"
	}
	return wait
}

func propagation(b *api.ResourceBundle) string {
	if b.DeleteOption == nil || b.DeleteOption.PropagationPolicy == "" {
		return "Foreground"
	}
	return string(b.DeleteOption.PropagationPolicy)
}
