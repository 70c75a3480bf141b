package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newTopCmd) }

// FleetSummary is what `baton top -o json` prints: freshness per consumer
// and in total.
type FleetSummary struct {
	Consumers []ConsumerSummary `json:"consumers"`
	Total     ConsumerSummary   `json:"total"`
}

// ConsumerSummary counts one consumer's bundles by freshness.
type ConsumerSummary struct {
	Name  string          `json:"name"`
	Agent *api.AgentState `json:"agent,omitempty"`
	// Bundles, Fresh and Stale count bundles; StaleByReason splits Stale;
	// Unknown counts bundles without a verdict (a Maestro server).
	Bundles       int            `json:"bundles"`
	Fresh         int            `json:"fresh"`
	Stale         int            `json:"stale"`
	Unknown       int            `json:"unknown,omitempty"`
	StaleByReason map[string]int `json:"staleByReason"`
	// OldestDataSeconds is the largest data age among its bundles.
	OldestDataSeconds float64 `json:"oldestDataSeconds"`
}

func newTopCmd() *cobra.Command {
	var output string
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:     "top",
		Aliases: []string{"fleet"},
		Short:   "Summarise freshness across the fleet: per consumer, agent liveness and Fresh/Stale bundle counts",
		Long: `Summarise the fleet: for every consumer its agent's liveness and last
heartbeat, how many of its bundles are Fresh and how many Stale (by reason),
and the age of its oldest data; consumers with stale bundles come first. The
last row is the whole fleet.`,
		Example: `  # Which clusters have unconfirmed status, and why
  baton top

  # The same as JSON, for a script or an alert
  baton top -o json | jq '.total.staleByReason'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outTable, outJSON, outYAML); err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			consumers, err := c.AllConsumers(ctx, client.ListOptions{})
			if err != nil {
				return err
			}
			bundles, err := c.AllBundles(ctx, client.ListOptions{})
			if err != nil {
				return err
			}
			s := summarise(consumers, bundles)
			p := newPrinter(cmd.OutOrStdout(), output)
			if output != outTable {
				return p.encode(s)
			}
			return p.fleet(s)
		},
	}
	flags = addClientFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml")
	return cmd
}

// summarise counts bundles per consumer; stale consumers sort first, then
// by name.
func summarise(consumers []api.Consumer, bundles []api.ResourceBundle) FleetSummary {
	by := map[string]*ConsumerSummary{}
	for _, c := range consumers {
		by[c.Name] = &ConsumerSummary{Name: c.Name, Agent: c.Agent, StaleByReason: map[string]int{}}
	}
	total := ConsumerSummary{Name: "TOTAL", StaleByReason: map[string]int{}}
	for i := range bundles {
		b := &bundles[i]
		s := by[b.ConsumerName]
		if s == nil {
			s = &ConsumerSummary{Name: b.ConsumerName, StaleByReason: map[string]int{}}
			by[b.ConsumerName] = s
		}
		for _, x := range []*ConsumerSummary{s, &total} {
			x.Bundles++
			switch {
			case b.Status == nil || b.Status.Freshness == nil:
				x.Unknown++
			case b.Status.Freshness.State == api.FreshnessFresh:
				x.Fresh++
			default:
				x.Stale++
				x.StaleByReason[b.Status.Freshness.Reason]++
			}
			if b.Status != nil && b.Status.Freshness != nil {
				x.OldestDataSeconds = max(x.OldestDataSeconds, b.Status.Freshness.AgeSeconds)
			}
		}
	}
	out := FleetSummary{Total: total, Consumers: []ConsumerSummary{}}
	for _, s := range by {
		out.Consumers = append(out.Consumers, *s)
	}
	sort.Slice(out.Consumers, func(i, j int) bool {
		a, b := out.Consumers[i], out.Consumers[j]
		if (a.Stale > 0) != (b.Stale > 0) {
			return a.Stale > 0
		}
		return a.Name < b.Name
	})
	return out
}

func (p *printer) fleet(s FleetSummary) error {
	tw := p.table()
	tw.row("CONSUMER\tAGENT\tLAST HEARTBEAT\tBUNDLES\tFRESH\tSTALE\tSTALE REASONS\tOLDEST DATA")
	row := func(c ConsumerSummary, agent, hb string) {
		tw.row(fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s", c.Name, agent, hb, c.Bundles, c.Fresh, c.Stale,
			reasons(c.StaleByReason), humanSeconds(c.OldestDataSeconds)))
	}
	connectedN := 0
	for _, c := range s.Consumers {
		agent, hb := "-", "-"
		if c.Agent != nil {
			agent = p.paint(connected(c.Agent.Connected))
			if c.Agent.Connected {
				connectedN++
			}
			if c.Agent.LastHeartbeat != nil {
				hb = p.age(*c.Agent.LastHeartbeat) + " ago"
			}
		}
		row(c, agent, hb)
	}
	row(s.Total, fmt.Sprintf("%d/%d connected", connectedN, len(s.Consumers)), "")
	return tw.Flush()
}

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}
