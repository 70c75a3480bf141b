package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

// Output formats of -o.
const (
	outTable = ""
	outWide  = "wide"
	outJSON  = "json"
	outYAML  = "yaml"
	outName  = "name"
)

func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	var names []string
	for _, a := range allowed {
		if a != "" {
			names = append(names, a)
		}
	}
	return fmt.Errorf("unknown output format %q: want one of %s", o, strings.Join(names, ", "))
}

// printer renders API objects; now fixes the reference time of AGE columns.
type printer struct {
	w      io.Writer
	format string
	now    time.Time
	color  bool
	// widths are the column widths of the last table printed; later tables
	// (rows of a watch) are at least as wide, so they line up under it.
	widths []int
}

func newPrinter(w io.Writer, format string) *printer {
	return &printer{w: w, format: format, now: time.Now(), color: isTerminal(w)}
}

// encode writes v as indented JSON or as YAML.
func (p *printer) encode(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	if p.format == outYAML {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		_, err = p.w.Write(data)
		return err
	}
	_, err = fmt.Fprintf(p.w, "%s\n", data)
	return err
}

// table collects rows of tab-separated cells; Flush aligns them by their
// visible width (colour codes do not count) and writes them out.
type table struct {
	w    io.Writer
	rows [][]string
	// widths, if set, holds minimum column widths and receives the ones used.
	widths *[]int
}

func (p *printer) table() *table { return &table{w: p.w, widths: &p.widths} }

func (t *table) row(cells string) { t.rows = append(t.rows, strings.Split(cells, "\t")) }

func (t *table) Flush() error {
	var widths []int
	if t.widths != nil {
		widths = append(widths, *t.widths...)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], visibleLen(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-visibleLen(c)+3))
			}
		}
		b.WriteString("\n")
	}
	if t.widths != nil {
		*t.widths = widths
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// visibleLen is the number of runes of s outside ANSI escape sequences.
func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case esc:
			esc = r != 'm'
		case r == '\x1b':
			esc = true
		default:
			n++
		}
	}
	return n
}

// objects prints items as JSON or YAML (one object when it is a single
// item without header, else a list of listKind) or as resource/name lines,
// and reports whether it did; for the table formats it does nothing.
func objects[T any](p *printer, items []T, header bool, listKind, resource string, name func(*T) string) (bool, error) {
	switch p.format {
	case outJSON, outYAML:
		if len(items) == 1 && !header {
			return true, p.encode(items[0])
		}
		return true, p.encode(api.List[T]{Kind: listKind, Page: 1, Size: len(items), Total: len(items), Items: items})
	case outName:
		for i := range items {
			fmt.Fprintf(p.w, "%s/%s\n", resource, name(&items[i]))
		}
		return true, nil
	}
	return false, nil
}

func (p *printer) consumers(items []api.Consumer, header bool) error {
	if done, err := objects(p, items, header, api.KindConsumerList, "consumer", func(c *api.Consumer) string { return c.Name }); done {
		return err
	}
	tw := p.table()
	wide := p.format == outWide
	if header {
		cols := "NAME\tAGENT\tLAST HEARTBEAT\tAGE"
		if wide {
			cols += "\tID\tEPOCH\tLABELS"
		}
		tw.row(cols)
	}
	for _, c := range items {
		agent, hb, epoch := "-", "-", "-"
		if c.Agent != nil {
			agent = p.paint(connected(c.Agent.Connected))
			if c.Agent.LastHeartbeat != nil {
				hb = p.age(*c.Agent.LastHeartbeat) + " ago"
			}
			if c.Agent.Epoch != "" {
				epoch = c.Agent.Epoch
			}
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s", c.Name, agent, hb, p.age(c.CreatedAt))
		if wide {
			row += fmt.Sprintf("\t%s\t%s\t%s", c.ID, epoch, formatLabels(c.Labels))
		}
		tw.row(row)
	}
	return tw.Flush()
}

func connected(ok bool) string {
	if ok {
		return "Connected"
	}
	return "Disconnected"
}

func (p *printer) bundles(items []api.ResourceBundle, header bool) error {
	if done, err := objects(p, items, header, api.KindResourceBundleList, "bundle", doctor.DisplayName); done {
		return err
	}
	tw := p.table()
	wide := p.format == outWide
	if header {
		cols := "NAME\tCONSUMER\tVERSION\tAPPLIED\tAVAILABLE\tFRESHNESS\tAGE"
		if wide {
			cols += "\tID\tREVISION\tOBJECTS\tDATA AGE"
		}
		tw.row(cols)
	}
	for i := range items {
		b := &items[i]
		row := fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s\t%s", doctor.DisplayName(b), b.ConsumerName, b.Version,
			p.paint(bundleCondition(b, api.ConditionApplied)), p.paint(bundleCondition(b, api.ConditionAvailable)),
			p.paint(freshness(b)), p.age(b.CreatedAt))
		if wide {
			rev, objs := "-", "-"
			if b.Status != nil && reported(b.Status) {
				rev, objs = fmt.Sprint(b.Status.Revision), fmt.Sprint(len(b.Status.ResourceStatus))
			}
			row += fmt.Sprintf("\t%s\t%s\t%s\t%s", b.ID, rev, objs, dataAge(b))
		}
		tw.row(row)
	}
	return tw.Flush()
}

// bundleCondition is the status of a bundle condition ("-" when absent),
// "Deleting" for Applied once deletion was requested.
func bundleCondition(b *api.ResourceBundle, typ string) string {
	if b.DeletedAt != nil && typ == api.ConditionApplied {
		return "Deleting"
	}
	if b.Status == nil {
		return "-"
	}
	if c := condition(b.Status.Conditions, typ); c != nil {
		return string(c.Status)
	}
	return "-"
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// freshness is "Fresh", "Stale(Reason)" or "-" when the server gives no
// verdict (Maestro).
func freshness(b *api.ResourceBundle) string {
	if b.Status == nil || b.Status.Freshness == nil {
		return "-"
	}
	f := b.Status.Freshness
	if f.Reason != "" && f.State != api.FreshnessFresh {
		return f.State + "(" + f.Reason + ")"
	}
	return f.State
}

func dataAge(b *api.ResourceBundle) string {
	if b.Status == nil || b.Status.Freshness == nil {
		return "-"
	}
	return humanSeconds(b.Status.Freshness.AgeSeconds)
}

func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return duration.HumanDuration(d)
}

// age is a kubectl-style age of t ("<unknown>" for a zero time).
func (p *printer) age(t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(p.now.Sub(t))
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// ANSI colours, used only when writing to a terminal.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// paint colours well-known good and bad words when output is a terminal.
func (p *printer) paint(s string) string {
	if !p.color {
		return s
	}
	switch {
	case s == "True" || s == api.FreshnessFresh || s == "Connected" || s == api.SubscriptionActive:
		return ansiGreen + s + ansiReset
	case s == "False" || strings.HasPrefix(s, api.FreshnessStale) || s == "Disconnected" || s == api.SubscriptionFailing:
		return ansiRed + s + ansiReset
	case s == "Unknown" || s == "Deleting":
		return ansiYellow + s + ansiReset
	}
	return s
}

// jsonLine writes v as one compact line of JSON.
func jsonLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}
