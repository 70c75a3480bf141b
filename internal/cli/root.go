// Package cli implements the baton command line: the server and agent
// processes and the kubectl-style client verbs, one file per command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Execute runs the command line and returns the process exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		var ex *ExitError
		if errors.As(err, &ex) {
			if ex.Msg != "" {
				fmt.Fprintln(os.Stderr, "error:", ex.Msg)
			}
			return ex.Code
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

// ExitError ends the process with Code after printing Msg (if any).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "baton",
		Short: "Deliver Kubernetes manifest bundles to many clusters and report their live state",
		Long: `baton delivers bundles of Kubernetes manifests from one server to agents in
many clusters, applies them, and reports the live state of every applied or
observed object back. What baton reports about an object is the object as it
is now, or it is visibly marked as not confirmed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range commands {
		root.AddCommand(add())
	}
	return root
}

// commands is filled by each command file's init, so that commands live in
// files of their own without editing this one.
var commands []func() *cobra.Command

func register(f func() *cobra.Command) { commands = append(commands, f) }
