package rest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// bundleJSON is api.ResourceBundle as served: the status is always
// present and its lists are [] rather than absent, so that runbook
// commands such as jq '.items[].status.resourceStatus[]' work on bundles
// that have no report yet. Decoding it into api.ResourceBundle gives the
// same value.
type bundleJSON struct {
	api.ResourceBundle
	Status *statusJSON `json:"status"`
}

type statusJSON struct {
	ObservedVersion int64                `json:"ObservedVersion"`
	SequenceID      string               `json:"SequenceID,omitempty"`
	Conditions      []metav1.Condition   `json:"conditions"`
	ResourceStatus  []api.ResourceStatus `json:"resourceStatus"`
	Revision        int64                `json:"revision"`
	Freshness       *api.Freshness       `json:"freshness,omitempty"`
	Deletion        *api.Deletion        `json:"deletion,omitempty"`
}

// deletion says what the delete of a deleting bundle waits for (nil when
// the bundle is not deleting), from the stored status and the freshness
// verdict.
func deletion(b *store.Bundle, f *api.Freshness) *api.Deletion {
	if b.DeletedAt == nil {
		return nil
	}
	d := &api.Deletion{Since: *b.DeletedAt}
	var remaining []string
	for _, r := range b.Status.Reported.ResourceStatus {
		if r.Observed.Exists {
			remaining = append(remaining, r.ResourceMeta.Kind+"/"+r.ResourceMeta.Name)
		}
	}
	switch {
	case f != nil && f.Reason == api.ReasonAgentDisconnected:
		d.Reason = api.DeletionAgentDisconnected
		d.Message = fmt.Sprintf("the agent of consumer %s is not connected; the delete is confirmed when it returns", b.ConsumerName)
	case b.Status.ObservedGeneration < b.Generation:
		d.Reason = api.DeletionNotConfirmed
		d.Message = fmt.Sprintf("the delete (version %d) is sent to the agent of consumer %s and not confirmed yet", b.Version(), b.ConsumerName)
	default:
		d.Reason = api.DeletionObjectsRemaining
		d.Message = fmt.Sprintf("the agent is removing the objects; still present: %s", strings.Join(remaining, ", "))
		if len(remaining) == 0 {
			d.Message = "the agent is removing the objects"
		}
	}
	return d
}

func bundleHref(id string) string   { return api.BasePath + "/resource-bundles/" + id }
func consumerHref(id string) string { return api.BasePath + "/consumers/" + id }

// bundleOut converts a stored bundle. Manifests are shared, not copied.
// ext adds baton's members that Maestro's schema has no place for (the
// top-level source and executor); without it the result decodes with Maestro's strict
// client types.
func (h *Handler) bundleOut(b *store.Bundle, ext bool) *bundleJSON {
	st := &statusJSON{
		ObservedVersion: b.VersionOf(b.Status.ObservedGeneration),
		SequenceID:      b.Status.SequenceID,
		Conditions:      b.Status.Reported.Conditions,
		ResourceStatus:  b.Status.Reported.ResourceStatus,
		Revision:        b.Status.Revision,
	}
	if st.Conditions == nil {
		st.Conditions = []metav1.Condition{}
	}
	if st.ResourceStatus == nil {
		st.ResourceStatus = []api.ResourceStatus{}
	}
	if h.freshness != nil {
		st.Freshness = h.freshness.Freshness(b)
	}
	st.Deletion = deletion(b, st.Freshness)
	manifests := b.Spec.Manifests
	if manifests == nil {
		manifests = []json.RawMessage{}
	}
	source := ""
	var executor *workv1.ManifestWorkExecutor
	if ext {
		source, executor = b.Source, b.Spec.Executor
	}
	return &bundleJSON{
		ResourceBundle: api.ResourceBundle{
			ID:              b.ID,
			Kind:            api.KindResourceBundle,
			Href:            bundleHref(b.ID),
			Name:            b.Name,
			ConsumerName:    b.ConsumerName,
			Source:          source,
			Version:         b.Version(),
			CreatedAt:       b.CreatedAt,
			UpdatedAt:       b.UpdatedAt,
			DeletedAt:       b.DeletedAt,
			Metadata:        b.Meta.WithTimestamps(b.CreatedAt, b.DeletedAt),
			Manifests:       manifests,
			ManifestConfigs: b.Spec.ManifestConfigs,
			DeleteOption:    b.Spec.DeleteOption,
			Executor:        executor,
		},
		Status: st,
	}
}

// consumerOut converts a stored consumer at now; ext adds the agent state
// (baton's addition, not in Maestro's schema), agent.conflict included.
func consumerOut(c *store.Consumer, ext bool, now time.Time) *api.Consumer {
	out := &api.Consumer{
		ID:        c.ID,
		Kind:      api.KindConsumer,
		Href:      consumerHref(c.ID),
		Name:      c.Name,
		Labels:    c.Labels,
		CreatedAt: c.CreatedAt,
		UpdatedAt: c.UpdatedAt,
	}
	if !ext {
		return out
	}
	out.Agent = &api.AgentState{Connected: c.Agent.Connected, Epoch: c.Agent.Epoch}
	if !c.Agent.LastHeartbeat.IsZero() {
		hb := c.Agent.LastHeartbeat
		out.Agent.LastHeartbeat = &hb
	}
	out.Agent.ID, out.Agent.Conflict = agentConflict(c.Agent.Lease, now)
	return out
}

// ConflictWindow is how long after a second agent was last told to stand
// down the consumer still shows the conflict. A standing-by agent says
// Hello again every second or so, so the conflict stays visible while it
// runs and goes soon after it stopped.
const ConflictWindow = 30 * time.Second

// agentConflict returns the identity of the agent serving the consumer
// (empty when no session lease is live) and the conflict to show, if a
// second agent was refused within ConflictWindow.
func agentConflict(l store.AgentLease, now time.Time) (string, *api.AgentConflict) {
	if l.Holder == "" || !now.Before(l.ExpiresAt) {
		return "", nil
	}
	if l.Contender == "" || l.Contender == l.Holder || now.Sub(l.ContendedAt) > ConflictWindow {
		return l.Holder, nil
	}
	at := l.ContendedAt
	return l.Holder, &api.AgentConflict{
		Active: l.Holder, StandingBy: l.Contender, LastRefusedAt: &at,
		Message: fmt.Sprintf("two agents serve consumer: %q is active, %q was told to stand down", l.Holder, l.Contender),
	}
}

// bundleHead and bundleTail are the members of a bundle before and after
// its manifests, in api.ResourceBundle's order. Encoding a bundle as head,
// raw manifests, tail copies the stored manifests as they are: going
// through encoding/json would re-scan and compact every byte of them.
type bundleHead struct {
	ID           string         `json:"id"`
	Kind         string         `json:"kind"`
	Href         string         `json:"href"`
	Name         string         `json:"name"`
	ConsumerName string         `json:"consumer_name"`
	Source       string         `json:"source,omitempty"`
	Version      int64          `json:"version"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	DeletedAt    *time.Time     `json:"deleted_at,omitempty"`
	Metadata     api.ObjectMeta `json:"metadata"`
}

type bundleTail struct {
	ManifestConfigs []workv1.ManifestConfigOption `json:"manifest_configs,omitempty"`
	DeleteOption    *workv1.DeleteOption          `json:"delete_option,omitempty"`
	Executor        *workv1.ManifestWorkExecutor  `json:"executor,omitempty"`
	Status          *statusJSON                   `json:"status"`
}

// itemEncoder encodes list items into a reused buffer.
type itemEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
	out []byte
}

func newItemEncoder() *itemEncoder {
	e := &itemEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// encode returns the JSON of v; it is valid until the next call.
func (e *itemEncoder) encode(v any) ([]byte, error) {
	e.out = e.out[:0]
	if b, ok := v.(*bundleJSON); ok {
		return e.bundle(b)
	}
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	e.out = append(e.out, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...)
	return e.out, nil
}

func (e *itemEncoder) bundle(b *bundleJSON) ([]byte, error) {
	rb := &b.ResourceBundle
	e.buf.Reset()
	err := e.enc.Encode(bundleHead{
		ID: rb.ID, Kind: rb.Kind, Href: rb.Href, Name: rb.Name, ConsumerName: rb.ConsumerName,
		Source: rb.Source, Version: rb.Version, CreatedAt: rb.CreatedAt, UpdatedAt: rb.UpdatedAt,
		DeletedAt: rb.DeletedAt, Metadata: rb.Metadata,
	})
	if err != nil {
		return nil, err
	}
	head := bytes.TrimSpace(e.buf.Bytes())
	e.out = append(e.out, head[:len(head)-1]...) // drop "}"
	e.out = append(e.out, `,"manifests":[`...)
	for i, m := range rb.Manifests {
		if i > 0 {
			e.out = append(e.out, ',')
		}
		if len(m) == 0 {
			m = json.RawMessage("null")
		}
		e.out = append(e.out, m...)
	}
	e.out = append(e.out, "],"...)
	e.buf.Reset()
	if err := e.enc.Encode(bundleTail{ManifestConfigs: rb.ManifestConfigs, DeleteOption: rb.DeleteOption, Executor: rb.Executor, Status: b.Status}); err != nil {
		return nil, err
	}
	tail := bytes.TrimSpace(e.buf.Bytes())
	e.out = append(e.out, tail[1:]...) // drop "{"
	return e.out, nil
}

// writeOne writes a single object, reduced to the projection if any.
func writeOne(w http.ResponseWriter, status int, v any, p *projection) error {
	raw, err := newItemEncoder().encode(v)
	if err == nil && p != nil {
		raw, err = p.apply(raw)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
	return nil
}

// listWriter streams a list envelope: the header, then one item at a time.
type listWriter struct {
	bw    *bufio.Writer
	dw    *deadlineWriter
	ie    *itemEncoder
	p     *projection
	first bool
	err   error
}

// deadlineWriter gives every write to the client timeout to complete.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	now     func() time.Time
	timeout time.Duration
	set     bool
	failed  bool // a write to the client failed
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.rc.SetWriteDeadline(d.now().Add(d.timeout)) == nil {
		d.set = true
	}
	n, err := d.w.Write(p)
	if err != nil {
		d.failed = true
	}
	return n, err
}

// clear removes the deadline, so a keep-alive connection's next response
// is not cut off by it.
func (d *deadlineWriter) clear() {
	if d.set {
		_ = d.rc.SetWriteDeadline(time.Time{})
	}
}

// startList sends the status line and the envelope up to the items.
func (h *Handler) startList(w http.ResponseWriter, kind string, page, size, total int, p *projection) *listWriter {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// Network deadlines are wall-clock times, whatever clock the handler has.
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), now: time.Now, timeout: h.listWrite}
	bw := bufio.NewWriterSize(dw, 64<<10)
	buf := make([]byte, 0, 128)
	buf = append(buf, `{"kind":`...)
	buf = strconv.AppendQuote(buf, kind)
	buf = append(buf, `,"page":`...)
	buf = strconv.AppendInt(buf, int64(page), 10)
	buf = append(buf, `,"size":`...)
	buf = strconv.AppendInt(buf, int64(size), 10)
	buf = append(buf, `,"total":`...)
	buf = strconv.AppendInt(buf, int64(total), 10)
	buf = append(buf, `,"items":[`...)
	_, _ = bw.Write(buf)
	return &listWriter{bw: bw, dw: dw, ie: newItemEncoder(), p: p, first: true}
}

// item writes one item; after the first error every call is a no-op that
// returns it.
func (lw *listWriter) item(v any) error {
	if lw.err != nil {
		return lw.err
	}
	if !lw.first {
		_ = lw.bw.WriteByte(',')
	}
	lw.first = false
	raw, err := lw.ie.encode(v)
	if err == nil && lw.p != nil {
		raw, err = lw.p.apply(raw)
	}
	if err == nil {
		_, err = lw.bw.Write(raw)
	}
	lw.err = err
	return err
}

// fail records a failure after the envelope started (a store error
// mid-stream); finish then cuts the response off.
func (lw *listWriter) fail(err error) {
	if lw.err == nil {
		lw.err = err
	}
}

// finish closes the envelope. If an item failed, the response is cut off
// (the status line is already sent) so a client never takes a truncated
// list for a complete one.
func (lw *listWriter) finish() error {
	if lw.err == nil {
		_, _ = lw.bw.WriteString("]}\n")
		lw.err = lw.bw.Flush()
	}
	if lw.err == nil {
		lw.dw.clear()
	}
	return lw.err
}

// clientGone reports that the list failed writing to the client (it went
// away or stopped reading), not in the server.
func (lw *listWriter) clientGone() bool { return lw.dw.failed }
