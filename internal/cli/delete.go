package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newDeleteCmd) }

func newDeleteCmd() *cobra.Command {
	var consumer string
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "delete bundle|consumer NAME",
		Short: "Delete a resource bundle or a consumer",
		Long: `Delete a resource bundle or a consumer. A deleted bundle is marked deleting
and disappears once its agent confirms the removal of its objects. A
consumer can be deleted only when it has no bundles left.`,
		Example: `  # Delete a bundle (its objects are removed as its delete option says)
  baton delete bundle shared-ingress --consumer dev

  # Delete a consumer without bundles
  baton delete consumer dev`,
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
			if kind == kindConsumer {
				con, err := c.ConsumerByName(ctx, name)
				if err != nil {
					return err
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
			if err := c.DeleteBundle(ctx, b.ID); err != nil {
				return fmt.Errorf("bundle %s: delete: %w", name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle/%s deleted\n", name)
			return nil
		},
	}
	flags = addClientFlags(cmd)
	cmd.Flags().StringVarP(&consumer, "consumer", "c", "", "consumer of the bundle (needed when the name is in several)")
	return cmd
}
