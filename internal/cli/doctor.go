package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newDoctorCmd) }

type doctorOptions struct {
	*clientFlags
	kubeconfig string
	context    string
	consumer   string
	fix        bool
	timeout    time.Duration
	interval   time.Duration
	output     string
}

func newDoctorCmd() *cobra.Command {
	o := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor --kubeconfig FILE",
		Short: "Check what bundles report against the live cluster",
		Long: `Check every object a bundle reports on against the cluster it lives in:
that it exists (or not) as reported, has the reported uid and resourceVersion,
and that every feedback value, re-evaluated from the bundle's feedback rules
on the live object, equals the reported one. Mismatches are printed as a table
and the exit code is 1.

It works against a Maestro server too: Maestro reports no object identity,
so there only existence and feedback values are compared — which finds the
stale shared-ingress IP of a rebuilt management cluster.

The kubeconfig reaches one cluster, so doctor checks one consumer's bundles:
--consumer may be left out only when the server has bundles of one consumer.

With --fix, doctor asks the server to resync every bundle that disagrees and
waits until a re-check agrees (also while the agent reconnects), or fails
after --timeout. Exit code 0: everything agrees; 1: mismatches remain or
objects could not be read.`,
		Example: `  # Check consumer mgmt-1's bundles against its cluster
  baton doctor --kubeconfig mgmt-1.kubeconfig --consumer mgmt-1

  # Check a Maestro server through a port-forward
  baton doctor --kubeconfig mgmt-1.kubeconfig --server http://localhost:8002

  # Resync whatever disagrees and wait up to two minutes for agreement
  baton doctor --kubeconfig mgmt-1.kubeconfig --consumer mgmt-1 --fix --timeout 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.clientFlags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the consumer's cluster (default: $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.context, "context", "", "kubeconfig context to use")
	f.StringVarP(&o.consumer, "consumer", "c", "", "the consumer whose cluster --kubeconfig reaches (needed when the server has several)")
	f.BoolVar(&o.fix, "fix", false, "resync bundles that disagree and wait until they agree")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	f.DurationVar(&o.interval, "interval", 500*time.Millisecond, "pause between re-checks with --fix")
	f.StringVarP(&o.output, "output", "o", "", "output format: json")
	return cmd
}

func (o *doctorOptions) run(cmd *cobra.Command) error {
	if err := checkOutput(o.output, outTable, outJSON); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.context}).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return &ExitError{Code: 2, Msg: "no kubeconfig found: pass --kubeconfig FILE (the consumer's cluster) or set KUBECONFIG; ~/.kube/config does not exist or is empty"}
	}
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// Re-checks read every object each interval; the client default of 5 QPS
	// would turn --fix waits into rate limiter errors.
	cfg.QPS, cfg.Burst = 100, 200
	getter, err := doctor.NewClusterGetter(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	search := ""
	if o.consumer != "" {
		search = "consumer_name=" + client.Quote(o.consumer)
	}
	bundles, err := c.AllBundles(ctx, client.ListOptions{Search: search})
	if err != nil {
		return err
	}
	if consumers := consumersOf(bundles); len(consumers) > 1 {
		return fmt.Errorf("the bundles belong to %d consumers (%s): pass --consumer for the cluster of the kubeconfig",
			len(consumers), strings.Join(consumers, ", "))
	}
	res := doctor.Check(ctx, getter, bundles)
	p := newPrinter(cmd.OutOrStdout(), o.output)
	if !o.fix || res.OK() || len(res.BundleIDs()) == 0 {
		return o.report(p, cmd.ErrOrStderr(), res, "")
	}
	if o.output != outJSON {
		if err := o.report(p, cmd.ErrOrStderr(), res, ""); err != nil && !isExit(err) {
			return err
		}
	}
	ids := res.BundleIDs()
	fo := doctor.DefaultFixOptions()
	fo.Interval = o.interval
	fo.Progress = progress(cmd.ErrOrStderr(), len(ids))
	fo.Retryable = client.IsConflict // the agent is not connected (yet)
	warned := map[string]bool{}
	fo.Warn = func(id string, err error) {
		if !warned[id] {
			warned[id] = true
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: bundle %s: resync: %v; waiting for the agent to reconnect\n", id, err)
		}
	}
	final, err := doctor.Fix(ctx, c, getter, res, fo)
	if err != nil && isTerminal(cmd.ErrOrStderr()) {
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	if err != nil {
		if client.IsNotFound(err) {
			return fmt.Errorf("%w: the server has no resync endpoint (a Maestro server?); restart the agent to make it re-report", err)
		}
		if ctx.Err() == nil {
			return err
		}
		return o.report(p, cmd.ErrOrStderr(), final, fmt.Sprintf("%d of %s still disagree after %s", len(final.UnverifiedIDs()), count(len(ids), "bundle"), o.timeout))
	}
	if o.output == outJSON {
		return p.encode(final)
	}
	fmt.Fprintf(p.w, "resynced %s: all agree with the cluster now\n", count(len(ids), "bundle"))
	return nil
}

// consumersOf lists the consumers of bundles, sorted.
func consumersOf(bundles []api.ResourceBundle) []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range bundles {
		if !seen[b.ConsumerName] {
			seen[b.ConsumerName] = true
			out = append(out, b.ConsumerName)
		}
	}
	sort.Strings(out)
	return out
}

func isExit(err error) bool {
	_, ok := err.(*ExitError)
	return ok
}

// report prints a check result and returns an exit error unless it is OK.
func (o *doctorOptions) report(p *printer, stderr io.Writer, res doctor.Result, failMsg string) error {
	if o.output == outJSON {
		if err := p.encode(res); err != nil {
			return err
		}
	} else {
		printMismatches(p, res)
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, "warning: not verified:", e.String())
		}
	}
	if res.OK() && failMsg == "" {
		return nil
	}
	if failMsg == "" {
		failMsg = fmt.Sprintf("%s in %s", count(len(res.Mismatches), "mismatch"), count(len(res.BundleIDs()), "bundle"))
		if len(res.Errors) > 0 {
			failMsg += fmt.Sprintf(", %s not verified", count(len(res.Errors), "object"))
		}
	}
	return &ExitError{Code: 1, Msg: failMsg}
}

func printMismatches(p *printer, res doctor.Result) {
	if len(res.Mismatches) == 0 {
		fmt.Fprintf(p.w, "checked %s in %s: all agree with the cluster\n", count(res.Objects-len(res.Errors), "object"), count(res.Bundles, "bundle"))
		return
	}
	t := p.table()
	t.row("BUNDLE\tCONSUMER\tOBJECT\tFIELD\tREPORTED\tLIVE")
	for _, m := range res.Mismatches {
		t.row(fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", m.Bundle, m.Consumer, m.Object, m.Field,
			m.Reported, m.Live))
	}
	_ = t.Flush()
}

// progress returns a Fix progress callback writing "waiting for N bundles…
// K/N agree (4.1s)": rewritten in place on a terminal, else one line per change.
func progress(w io.Writer, total int) func(agree, n int, elapsed time.Duration) {
	tty, last := isTerminal(w), -1
	return func(agree, n int, elapsed time.Duration) {
		line := fmt.Sprintf("waiting for %s… %d/%d agree (%.1fs)", count(total, "bundle"), agree, n, elapsed.Seconds())
		switch {
		case tty:
			fmt.Fprintf(w, "\r%s", line)
			if agree == n {
				fmt.Fprintln(w)
			}
		case agree != last:
			fmt.Fprintln(w, line)
		}
		last = agree
	}
}

// count is "1 bundle", "2 bundles" ("mismatch" takes "es").
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
