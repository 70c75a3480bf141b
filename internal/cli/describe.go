package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newDescribeCmd) }

func newDescribeCmd() *cobra.Command {
	var consumer string
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "describe consumer|bundle NAME",
		Short: "Show a consumer or a resource bundle in detail",
		Long: `Show a consumer (its agent connection and bundles) or a resource bundle:
conditions, the freshness verdict and data age, and for every object the
live identity the agent observed (uid, resourceVersion, generation, when it
was observed) with its conditions and feedback values.`,
		Example: `  # Everything known about one bundle
  baton describe bundle shared-ingress --consumer mgmt-1

  # A consumer's agent connection and bundles
  baton describe consumer mgmt-1`,
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
			if kind == kindSubscription {
				return getSubscriptions(cmd.Context(), c, newPrinter(cmd.OutOrStdout(), outYAML), args[1])
			}
			p := newPrinter(cmd.OutOrStdout(), "")
			tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
			p.w = tw
			if kind == kindConsumer {
				err = describeConsumer(cmd.Context(), c, p, args[1])
			} else {
				err = describeBundle(cmd.Context(), c, p, consumer, args[1])
			}
			if ferr := tw.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	flags = addClientFlags(cmd)
	cmd.Flags().StringVarP(&consumer, "consumer", "c", "", "consumer of the bundle (needed when the name is in several)")
	return cmd
}

func describeConsumer(ctx context.Context, c *client.Client, p *printer, name string) error {
	con, err := c.ConsumerByName(ctx, name)
	if err != nil {
		return err
	}
	bundles, err := c.AllBundles(ctx, client.ListOptions{Search: "consumer_name=" + client.Quote(con.Name)})
	if err != nil {
		return err
	}
	w := p.w
	fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nLabels:\t%s\nCreated:\t%s\n", con.Name, con.ID, formatLabels(con.Labels), p.when(con.CreatedAt))
	p.agent(w, con.Agent)
	fmt.Fprintf(w, "Bundles:\t%d\n", len(bundles))
	if len(bundles) > 0 {
		sortBundles(bundles)
		fmt.Fprintln(w)
		return p.bundles(bundles, true)
	}
	return nil
}

func (p *printer) agent(w io.Writer, a *api.AgentState) {
	if a == nil {
		fmt.Fprintln(w, "Agent:\t<not reported by this server>")
		return
	}
	fmt.Fprintf(w, "Agent:\n  State:\t%s\n", p.paint(connected(a.Connected)))
	if a.Epoch != "" {
		fmt.Fprintf(w, "  Epoch:\t%s\n", a.Epoch)
	}
	if a.LastHeartbeat != nil {
		fmt.Fprintf(w, "  Last heartbeat:\t%s\n", p.when(*a.LastHeartbeat))
	} else {
		fmt.Fprintln(w, "  Last heartbeat:\t<never>")
	}
}

// when is an absolute time with its age: "2026-11-25T17:00:00Z (3m ago)".
func (p *printer) when(t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), p.age(t))
}

func describeBundle(ctx context.Context, c *client.Client, p *printer, consumer, name string) error {
	b, err := c.BundleByName(ctx, consumer, name)
	if err != nil {
		return err
	}
	w := p.w
	fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nConsumer:\t%s\n", doctor.DisplayName(b), b.ID, b.ConsumerName)
	if b.Source != "" {
		fmt.Fprintf(w, "Source:\t%s\n", b.Source)
	}
	fmt.Fprintf(w, "Version:\t%d\nLabels:\t%s\nCreated:\t%s\nUpdated:\t%s\n",
		b.Version, formatLabels(b.Metadata.Labels), p.when(b.CreatedAt), p.when(b.UpdatedAt))
	if b.DeletedAt != nil {
		fmt.Fprintf(w, "Deleting since:\t%s\n", p.when(*b.DeletedAt))
		if b.Status != nil && b.Status.Deletion != nil {
			fmt.Fprintf(w, "Waiting for:\t%s: %s\n", b.Status.Deletion.Reason, b.Status.Deletion.Message)
		}
	}
	if b.DeleteOption != nil {
		fmt.Fprintf(w, "Delete option:\t%s\n", b.DeleteOption.PropagationPolicy)
	}
	fmt.Fprintf(w, "Manifests:\t%d\n", len(b.Manifests))
	if con, err := c.ConsumerByName(ctx, b.ConsumerName); err == nil {
		p.agent(w, con.Agent)
	}
	st := b.Status
	if st == nil || !reported(st) {
		fmt.Fprintln(w, "Status:\t<none reported yet>")
		if st != nil && st.Freshness != nil {
			p.freshness(w, st.Freshness)
		}
		return nil
	}
	fmt.Fprintf(w, "Status:\n  Observed version:\t%d\n  Revision:\t%d\n", st.ObservedVersion, st.Revision)
	if st.SequenceID != "" {
		fmt.Fprintf(w, "  Sequence ID:\t%s\n", st.SequenceID)
	}
	p.freshness(w, st.Freshness)
	fmt.Fprintln(w, "Conditions:")
	p.conditions(w, "  ", st.Conditions)
	fmt.Fprintln(w, "Resources:")
	for i := range st.ResourceStatus {
		p.resource(w, &st.ResourceStatus[i])
	}
	return nil
}

// reported tells whether an agent reported any status yet.
func reported(st *api.BundleStatus) bool {
	return st.Revision > 0 || st.SequenceID != "" || len(st.Conditions) > 0 || len(st.ResourceStatus) > 0
}

func (p *printer) freshness(w io.Writer, f *api.Freshness) {
	if f == nil {
		fmt.Fprintln(w, "  Freshness:\t<no verdict from this server>")
		return
	}
	verdict := f.State
	if f.Reason != "" {
		verdict += " (" + f.Reason + ")"
	}
	fmt.Fprintf(w, "  Freshness:\t%s\n  Data age:\t%s\n", p.paint(verdict), humanSeconds(f.AgeSeconds))
	if f.ConfirmedAt != nil {
		fmt.Fprintf(w, "  Confirmed:\t%s\n", p.when(*f.ConfirmedAt))
	}
}

func (p *printer) conditions(w io.Writer, indent string, conds []metav1.Condition) {
	if len(conds) == 0 {
		fmt.Fprintf(w, "%s<none>\n", indent)
		return
	}
	t := &table{w: w}
	t.row(indent + "TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range conds {
		t.row(fmt.Sprintf("%s%s\t%s\t%s\t%s\t%s", indent, c.Type, p.paint(string(c.Status)), orDash(c.Reason),
			p.age(c.LastTransitionTime.Time), c.Message))
	}
	_ = t.Flush()
}

func (p *printer) resource(w io.Writer, rs *api.ResourceStatus) {
	m := rs.ResourceMeta
	gv := m.Version
	if m.Group != "" {
		gv = m.Group + "/" + m.Version
	}
	fmt.Fprintf(w, "  %s (%s, ordinal %d)\n", doctor.ObjectName(m), gv, m.Ordinal)
	o := rs.Observed
	switch {
	case o.ObservedAt.IsZero() && !o.Exists:
		fmt.Fprintln(w, "    Observed:\t<not reported by this server>")
	case !o.Exists:
		fmt.Fprintf(w, "    Observed:\tdoes not exist (confirmed %s)\n", p.when(o.ObservedAt))
	default:
		gen := ""
		if o.Generation > 0 {
			gen = fmt.Sprintf(" generation=%d", o.Generation)
		}
		fmt.Fprintf(w, "    Observed:\tuid=%s resourceVersion=%s%s at %s\n",
			o.UID, orDash(o.ResourceVersion), gen, p.when(o.ObservedAt))
	}
	fmt.Fprintln(w, "    Conditions:")
	p.conditions(w, "      ", rs.Conditions)
	if len(rs.StatusFeedbacks.Values) == 0 {
		fmt.Fprintln(w, "    Feedback:\t<none>")
		return
	}
	fmt.Fprintln(w, "    Feedback:")
	for _, v := range rs.StatusFeedbacks.Values {
		fmt.Fprintf(w, "      %s = %s (%s)\n", v.Name, doctor.FormatValue(v.Value), v.Value.Type)
	}
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
