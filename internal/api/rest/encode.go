package rest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
}

func bundleHref(id string) string   { return api.BasePath + "/resource-bundles/" + id }
func consumerHref(id string) string { return api.BasePath + "/consumers/" + id }

// bundleOut converts a stored bundle. Manifests are shared, not copied.
func (h *Handler) bundleOut(b *store.Bundle) *bundleJSON {
	st := &statusJSON{
		ObservedVersion: b.Status.ObservedGeneration,
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
	manifests := b.Spec.Manifests
	if manifests == nil {
		manifests = []json.RawMessage{}
	}
	return &bundleJSON{
		ResourceBundle: api.ResourceBundle{
			ID:              b.ID,
			Kind:            api.KindResourceBundle,
			Href:            bundleHref(b.ID),
			Name:            b.Name,
			ConsumerName:    b.ConsumerName,
			Source:          b.Source,
			Version:         b.Generation,
			CreatedAt:       b.CreatedAt,
			UpdatedAt:       b.UpdatedAt,
			DeletedAt:       b.DeletedAt,
			Metadata:        b.Meta,
			Manifests:       manifests,
			ManifestConfigs: b.Spec.ManifestConfigs,
			DeleteOption:    b.Spec.DeleteOption,
		},
		Status: st,
	}
}

// consumerOut converts a stored consumer, agent state included.
func consumerOut(c *store.Consumer) *api.Consumer {
	out := &api.Consumer{
		ID:        c.ID,
		Kind:      api.KindConsumer,
		Href:      consumerHref(c.ID),
		Name:      c.Name,
		Labels:    c.Labels,
		CreatedAt: c.CreatedAt,
		UpdatedAt: c.UpdatedAt,
		Agent:     &api.AgentState{Connected: c.Agent.Connected, Epoch: c.Agent.Epoch},
	}
	if !c.Agent.LastHeartbeat.IsZero() {
		hb := c.Agent.LastHeartbeat
		out.Agent.LastHeartbeat = &hb
	}
	return out
}

// writeOne writes a single object, reduced to the projection if any.
func writeOne(w http.ResponseWriter, status int, v any, p *projection) error {
	if p == nil {
		writeJSON(w, status, v)
		return nil
	}
	raw, err := json.Marshal(v)
	if err == nil {
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
	enc   *json.Encoder
	p     *projection
	first bool
	err   error
}

func startList(w http.ResponseWriter, kind string, page, size, total int, p *projection) *listWriter {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
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
	return &listWriter{bw: bw, enc: enc, p: p, first: true}
}

// item writes one item; after the first error every call is a no-op.
func (lw *listWriter) item(v any) {
	if lw.err != nil {
		return
	}
	if !lw.first {
		_ = lw.bw.WriteByte(',')
	}
	lw.first = false
	if lw.p == nil {
		lw.err = lw.enc.Encode(v)
		return
	}
	raw, err := json.Marshal(v)
	if err == nil {
		raw, err = lw.p.apply(raw)
	}
	if err == nil {
		_, err = lw.bw.Write(raw)
	}
	lw.err = err
}

// finish closes the envelope. If an item failed, the response is cut off
// (the status line is already sent) so a client never takes a truncated
// list for a complete one.
func (lw *listWriter) finish() error {
	if lw.err != nil {
		return lw.err
	}
	_, _ = lw.bw.WriteString("]}\n")
	return lw.bw.Flush()
}
