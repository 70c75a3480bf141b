package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

// checkOrphanFlags refuses --orphan and --cascade where they mean nothing.
func checkOrphanFlags(kind string, orphan bool, cascade string) error {
	switch {
	case orphan && kind != kindBundle:
		return fmt.Errorf("--orphan applies to bundles; for a consumer use --cascade=orphan")
	case cascade != "" && kind != kindConsumer:
		return fmt.Errorf("--cascade applies to consumers; for a bundle use --orphan")
	case cascade != "" && cascade != "orphan":
		return fmt.Errorf("--cascade=%s: unsupported; the only cascade is orphan", cascade)
	}
	return nil
}

// confirm asks question on the command's input unless yes; anything but
// y or yes (an empty or closed input included) declines.
func confirm(cmd *cobra.Command, yes bool, question string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N]: ", question)
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("not confirmed; nothing changed (pass --yes to skip the question)")
}

func orphanBundle(cmd *cobra.Command, c *client.Client, b *api.ResourceBundle, yes bool) error {
	q := fmt.Sprintf("Finalize bundle/%s of consumer %s without its agent? Its objects stay in the cluster, no longer managed",
		b.Name, b.ConsumerName)
	if err := confirm(cmd, yes, q); err != nil {
		return err
	}
	if err := c.OrphanBundle(cmd.Context(), b.ID); err != nil {
		return fmt.Errorf("bundle %s: orphan: %w", b.Name, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "bundle/%s finalized without its agent; its objects stay in consumer %s's cluster\n",
		b.Name, b.ConsumerName)
	return nil
}

func decommission(cmd *cobra.Command, c *client.Client, con *api.Consumer, yes bool) error {
	q := fmt.Sprintf("Decommission consumer %s: finalize all its bundles without the agent (objects stay) and refuse its agent from now on?",
		con.Name)
	if err := confirm(cmd, yes, q); err != nil {
		return err
	}
	if err := c.DecommissionConsumer(cmd.Context(), con.ID); err != nil {
		return fmt.Errorf("consumer %s: decommission: %w", con.Name, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "consumer/%s decommissioned: its bundles are finalized, its agent is refused\n", con.Name)
	return nil
}
