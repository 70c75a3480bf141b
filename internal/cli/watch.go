package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newWatchCmd) }

func newWatchCmd() *cobra.Command {
	var consumer, output string
	var since int64
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "watch [bundles]",
		Short: "Print bundle changes as they happen",
		Long: `Print one line per bundle change (spec or status) as the server records it:
time, event type, change sequence, bundle, consumer, version, revision,
conditions and freshness. With -o json every event is printed as the
server streams it. --since N resumes after change N (0: every change the
server keeps). When the server ends the stream (it drops watchers that fall
behind), baton reconnects after the last change it printed.`,
		Example: `  # Follow every bundle change
  baton watch

  # Follow one consumer's bundles as JSON lines
  baton watch bundles --consumer mgmt-1 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if k, err := resourceKind(args[0]); err != nil || k != kindBundle {
					return fmt.Errorf("unknown resource type %q: only bundles can be watched", args[0])
				}
			}
			if err := checkOutput(output, outTable, outJSON); err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			search := ""
			if consumer != "" {
				search = "consumer_name=" + client.Quote(consumer)
			}
			events, err := c.Watch(cmd.Context(), client.WatchOptions{Since: since, Search: search, Resume: true})
			if err != nil {
				return err
			}
			p := newPrinter(cmd.OutOrStdout(), output)
			for ev := range events {
				if ev.Err != nil {
					return ev.Err
				}
				if output == outJSON {
					err = p.encodeLine(ev)
				} else {
					_, err = fmt.Fprintln(p.w, p.eventLine(ev))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	flags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&consumer, "consumer", "c", "", "only bundles of this consumer")
	f.Int64Var(&since, "since", client.FromNow, "resume after this change sequence number (0: every change the server keeps; default: new changes only)")
	f.StringVarP(&output, "output", "o", "", "output format: json (one event per line)")
	return cmd
}

// eventLine is one human-readable line for a watch event.
func (p *printer) eventLine(ev client.Event) string {
	b := &ev.Object
	rev := "-"
	if b.Status != nil {
		rev = fmt.Sprint(b.Status.Revision)
	}
	return fmt.Sprintf("%s %-8s seq=%d bundle/%s consumer=%s version=%d revision=%s applied=%s available=%s freshness=%s",
		time.Now().Format("15:04:05"), ev.Type, ev.Seq, doctor.DisplayName(b), b.ConsumerName, b.Version, rev,
		p.paint(bundleCondition(b, api.ConditionApplied)), p.paint(bundleCondition(b, api.ConditionAvailable)),
		p.paint(freshness(b)))
}

// encodeLine writes v as one line of JSON.
func (p *printer) encodeLine(v any) error {
	return jsonLine(p.w, v)
}
