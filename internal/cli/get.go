package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newGetCmd) }

type getOptions struct {
	*clientFlags
	output   string
	watch    bool
	selector string
	consumer string
}

func newGetCmd() *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get consumers|bundles|subscriptions [NAME]",
		Short: "List consumers, resource bundles or webhook subscriptions, or show one",
		Long: `List consumers or resource bundles in a table, or print them as JSON or YAML
(the REST API objects). The bundle table shows whether each bundle is applied
and available and whether its status is confirmed current (FRESHNESS); "-"
means the server gives no verdict (a Maestro server).`,
		Example: `  # All bundles, with freshness and age
  baton get bundles

  # One consumer's bundles with ids, revisions and data age
  baton get bundles --consumer mgmt-1 -o wide

  # One bundle as the REST API returns it
  baton get bundle shared-ingress -o yaml

  # Consumers labelled region=eastus, then follow bundle changes
  baton get consumers -l region=eastus
  baton get bundles --watch

  # Webhook subscriptions with their delivery state and backlog
  baton get subscriptions`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := resourceKind(args[0])
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			return o.run(cmd, kind, name)
		},
	}
	o.clientFlags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, json, yaml or name")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, print bundle changes as they happen")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector: key=value,key!=value")
	f.StringVarP(&o.consumer, "consumer", "c", "", "only bundles of this consumer")
	return cmd
}

// Resource kinds the verbs take.
const (
	kindConsumer     = "consumer"
	kindBundle       = "bundle"
	kindSubscription = "subscription"
)

// resourceKind accepts kubectl-style singular, plural and short names.
func resourceKind(s string) (string, error) {
	switch strings.ToLower(s) {
	case "consumer", "consumers", "cons":
		return kindConsumer, nil
	case "bundle", "bundles", "resource-bundle", "resource-bundles", "resourcebundle", "resourcebundles", "rb":
		return kindBundle, nil
	case "subscription", "subscriptions", "sub", "subs":
		return kindSubscription, nil
	}
	return "", fmt.Errorf("unknown resource type %q: want consumers, bundles or subscriptions", s)
}

func (o *getOptions) run(cmd *cobra.Command, kind, name string) error {
	if err := checkOutput(o.output, outTable, outWide, outJSON, outYAML, outName); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	p := newPrinter(cmd.OutOrStdout(), o.output)
	if kind != kindBundle && o.watch {
		return fmt.Errorf("--watch: only bundles can be watched")
	}
	switch kind {
	case kindConsumer:
		return o.getConsumers(ctx, c, p, name)
	case kindSubscription:
		return getSubscriptions(ctx, c, p, name)
	}
	search, err := o.bundleSearch(name)
	if err != nil {
		return err
	}
	var events <-chan client.Event
	if o.watch {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// The stream opens before the list so no change falls in between.
		if events, err = c.Watch(wctx, client.WatchOptions{Since: client.FromNow, Search: search, Resume: true}); err != nil {
			return err
		}
	}
	if err := o.getBundles(ctx, c, p, name); err != nil {
		return err
	}
	if events == nil {
		return nil
	}
	return followBundles(ctx, p, events, name)
}

func (o *getOptions) getConsumers(ctx context.Context, c *client.Client, p *printer, name string) error {
	if name != "" {
		con, err := c.ConsumerByName(ctx, name)
		if err != nil {
			return err
		}
		return p.consumers([]api.Consumer{*con}, false)
	}
	search, err := selectorSearch(o.selector)
	if err != nil {
		return err
	}
	items, err := c.AllConsumers(ctx, client.ListOptions{Search: search})
	if err != nil {
		return err
	}
	if len(items) == 0 && (p.format == outTable || p.format == outWide) {
		fmt.Fprintln(p.w, "No consumers found.")
		return nil
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return p.consumers(items, true)
}

func (o *getOptions) getBundles(ctx context.Context, c *client.Client, p *printer, name string) error {
	if name != "" {
		b, err := c.BundleByName(ctx, o.consumer, name)
		if err != nil {
			return err
		}
		return p.bundles([]api.ResourceBundle{*b}, false)
	}
	search, err := o.bundleSearch("")
	if err != nil {
		return err
	}
	items, err := c.AllBundles(ctx, client.ListOptions{Search: search})
	if err != nil {
		return err
	}
	if len(items) == 0 && (p.format == outTable || p.format == outWide) {
		fmt.Fprintln(p.w, "No bundles found.")
		return nil
	}
	sortBundles(items)
	return p.bundles(items, true)
}

// bundleSearch is the search expression for --consumer, -l and a name.
func (o *getOptions) bundleSearch(name string) (string, error) {
	var terms []string
	if o.consumer != "" {
		terms = append(terms, "consumer_name="+client.Quote(o.consumer))
	}
	if name != "" {
		terms = append(terms, "name="+client.Quote(name))
	}
	sel, err := selectorSearch(o.selector)
	if err != nil {
		return "", err
	}
	if sel != "" {
		terms = append(terms, sel)
	}
	return strings.Join(terms, " and "), nil
}

// selectorSearch turns a label selector (k=v, k==v, k!=v, comma separated)
// into a search expression over labels.<key>.
func selectorSearch(sel string) (string, error) {
	if strings.TrimSpace(sel) == "" {
		return "", nil
	}
	var terms []string
	for _, part := range strings.Split(sel, ",") {
		part = strings.TrimSpace(part)
		op := "="
		k, v, ok := strings.Cut(part, "!=")
		if ok {
			op = "!="
		} else if k, v, ok = strings.Cut(part, "=="); !ok {
			k, v, ok = strings.Cut(part, "=")
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.ContainsAny(k, " '") {
			return "", fmt.Errorf("selector %q: want key=value or key!=value terms separated by commas", sel)
		}
		terms = append(terms, "labels."+k+op+client.Quote(v))
	}
	return strings.Join(terms, " and "), nil
}

// followBundles prints watch events until the stream or ctx ends. With a
// name, only that bundle's events are printed.
func followBundles(ctx context.Context, p *printer, events <-chan client.Event, name string) error {
	for ev := range events {
		if ev.Err != nil {
			return ev.Err
		}
		if name != "" && ev.Object.Name != name && ev.Object.Metadata.Name != name && ev.Object.ID != name {
			continue
		}
		if err := p.bundles([]api.ResourceBundle{ev.Object}, false); err != nil {
			return err
		}
	}
	return nil
}

// sortBundles orders bundles by consumer, then name.
func sortBundles(items []api.ResourceBundle) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if a.ConsumerName != b.ConsumerName {
			return a.ConsumerName < b.ConsumerName
		}
		return doctor.DisplayName(a) < doctor.DisplayName(b)
	})
}
