package cli

import "github.com/spf13/cobra"

func init() { register(newBenchCmd) }

// benchCommands are the subcommands of `baton bench`, each registered by
// its own file.
var benchCommands []func() *cobra.Command

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a baton server as its users see it",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	for _, add := range benchCommands {
		cmd.AddCommand(add())
	}
	return cmd
}
