package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newCreateCmd) }

// EnvWebhookSecret holds the secret of `baton create subscription` when
// --secret-file is not given.
const EnvWebhookSecret = "BATON_WEBHOOK_SECRET"

type createSubOptions struct {
	*clientFlags
	url, search, secretFile, output string
	events, headers                 []string
}

func newCreateCmd() *cobra.Command {
	o := &createSubOptions{}
	cmd := &cobra.Command{
		Use:   "create subscription NAME --url URL",
		Short: "Create a webhook subscription: signed CloudEvents of bundle changes POSTed to a URL",
		Long: `Create a webhook subscription. Every change of a matching bundle (feedback
values, freshness, Applied/Available conditions, deletion) is POSTed to --url
as a CloudEvent (structured JSON) signed with the subscription's secret in the
X-Baton-Signature header; see docs/webhooks.md for the event and how to verify
it.

The secret comes from --secret-file, else $BATON_WEBHOOK_SECRET; with neither,
a random one is made and printed once (the server never shows it again).`,
		Example: `  # The DNS updater of examples/dns-updater: feedback changes of shared-ingress bundles
  BATON_WEBHOOK_SECRET=$(cat dns.secret) baton create subscription dns \
    --url http://127.0.0.1:9000/hook --events feedback --search "name = 'shared-ingress'"

  # Everything about consumer mgmt-1, with an extra header
  baton create subscription chat --url https://hooks.example.com/baton \
    --search "consumer_name = 'mgmt-1'" --header 'Authorization=Bearer abc'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k := strings.ToLower(args[0]); k != "subscription" && k != "subscriptions" && k != "sub" {
				return fmt.Errorf("unknown resource type %q: only subscriptions are created with create (bundles and consumers with apply)", args[0])
			}
			return o.run(cmd, args[1])
		},
	}
	o.clientFlags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "receiver URL (http:// or https://)")
	f.StringVar(&o.search, "search", "", "bundles to follow, in the list search language (default: all)")
	f.StringSliceVar(&o.events, "events", nil, "event kinds: "+strings.Join(api.EventKinds, ", ")+" (default: all)")
	f.StringArrayVar(&o.headers, "header", nil, "extra request header NAME=VALUE (repeatable)")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the signing secret (- for standard input)")
	f.StringVarP(&o.output, "output", "o", "", "output format: json, yaml or name")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

func (o *createSubOptions) run(cmd *cobra.Command, name string) error {
	if err := checkOutput(o.output, outTable, outJSON, outYAML, outName); err != nil {
		return err
	}
	headers := map[string]string{}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return fmt.Errorf("--header %q: want NAME=VALUE", h)
		}
		headers[k] = v
	}
	secret, generated, err := o.secret(cmd.InOrStdin())
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	s, err := c.CreateSubscription(cmd.Context(), api.Subscription{Name: name, URL: o.url, Secret: secret,
		Search: o.search, Events: o.events, Headers: headers})
	if err != nil {
		return fmt.Errorf("subscription %s: create: %w", name, err)
	}
	if o.output != outTable {
		return newPrinter(cmd.OutOrStdout(), o.output).subscriptions([]api.Subscription{*s}, false)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "subscription/%s created\n", s.Name)
	if generated {
		fmt.Fprintf(cmd.OutOrStdout(), "secret: %s\n(keep it for the receiver; it is not shown again)\n", secret)
	}
	return nil
}

// secret reads --secret-file or $BATON_WEBHOOK_SECRET, or makes one.
func (o *createSubOptions) secret(stdin io.Reader) (string, bool, error) {
	switch {
	case o.secretFile == "-":
		b, err := io.ReadAll(stdin)
		return strings.TrimSpace(string(b)), false, err
	case o.secretFile != "":
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return "", false, fmt.Errorf("--secret-file: %w", err)
		}
		return strings.TrimSpace(string(b)), false, nil
	case os.Getenv(EnvWebhookSecret) != "":
		return os.Getenv(EnvWebhookSecret), false, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(b), true, nil
}

// getSubscriptions prints one subscription (by id or name) or all.
func getSubscriptions(ctx context.Context, c *client.Client, p *printer, name string) error {
	if name != "" {
		s, err := c.GetSubscription(ctx, name)
		if err != nil {
			return err
		}
		return p.subscriptions([]api.Subscription{*s}, false)
	}
	items, err := c.ListSubscriptions(ctx)
	if err != nil {
		return err
	}
	if len(items) == 0 && (p.format == outTable || p.format == outWide) {
		fmt.Fprintln(p.w, "No subscriptions found.")
		return nil
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return p.subscriptions(items, true)
}

func (p *printer) subscriptions(items []api.Subscription, header bool) error {
	if done, err := objects(p, items, header, api.KindSubscriptionList, "subscription", func(s *api.Subscription) string { return s.Name }); done {
		return err
	}
	tw := p.table()
	wide := p.format == outWide
	cols := "NAME\tURL\tEVENTS\tSTATE\tBACKLOG\tLAST SUCCESS\tLAST ERROR"
	if wide {
		cols += "\tID\tDELIVERED\tDROPPED\tSEARCH"
	}
	tw.row(cols)
	for _, s := range items {
		st := s.Status
		if st == nil {
			st = &api.SubscriptionState{State: "-"}
		}
		events := "all"
		if len(s.Events) > 0 {
			events = strings.Join(s.Events, ",")
		}
		last, lastErr := "-", "-"
		if st.LastSuccess != nil {
			last = p.age(*st.LastSuccess) + " ago"
		}
		if st.LastError != "" && st.Failures > 0 {
			lastErr = st.LastError
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", s.Name, s.URL, events, p.paint(st.State), st.Backlog, last, lastErr)
		if wide {
			search := s.Search
			if search == "" {
				search = "-"
			}
			row += fmt.Sprintf("\t%s\t%d\t%d\t%s", s.ID, st.Delivered, st.Dropped, search)
		}
		tw.row(row)
	}
	return tw.Flush()
}
