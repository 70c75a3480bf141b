package cloudevents

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// DataType is the ManifestBundle CloudEvents data type.
const DataType = "io.open-cluster-management.works.v1alpha1.manifestbundles"

// Event types.
const (
	TypeSpecCreate   = DataType + ".spec.create_request"
	TypeSpecUpdate   = DataType + ".spec.update_request"
	TypeSpecDelete   = DataType + ".spec.delete_request"
	TypeSpecResync   = DataType + ".spec.resync_request"
	TypeSpecAck      = DataType + ".spec.ack"
	TypeStatusUpdate = DataType + ".status.update_request"
	TypeStatusResync = DataType + ".status.resync_request"
	TypeStatusAck    = DataType + ".status.ack"
	TypeHeartbeat    = "io.open-cluster-management.cloudevents.heartbeat"
	// TypeSession is baton's: the answer to a Hello (protocol.Session).
	TypeSession = "io.baton.agent.session"
)

// Extension names.
const (
	ExtResourceID        = "resourceid"
	ExtResourceVersion   = "resourceversion"
	ExtClusterName       = "clustername"
	ExtOriginalSource    = "originalsource"
	ExtDeletionTimestamp = "deletiontimestamp"
	ExtSequenceID        = "sequenceid"
	ExtStatusHash        = "statushash"
	ExtMetadata          = "metadata"
	ExtEpoch             = "batonepoch"
	ExtRevision          = "batonrevision"
	ExtDeleted           = "batondeleted"
	ExtGone              = "batongone"
	ExtBatch             = "batonbatch"
	ExtBatches           = "batonbatches"
	ExtIncarnation       = "batonincarnation"
	// ExtObserved carries, on agent status events, the JSON array of the
	// per-object observed identities (api.Observed) in resourceStatus
	// order, so the data stays exactly OCM's ManifestBundleStatus.
	ExtObserved    = "batonobserved"
	ExtAgent       = "batonagent"
	ExtActive      = "batonactive"
	ExtHolder      = "batonholder"
	ExtRetryMillis = "batonretryms"
)

// ResourceVersion is one entry of a spec resync request. Incarnation is
// baton's addition (protocol.Hello.Incarnations).
type ResourceVersion struct {
	ResourceID      string `json:"resourceID"`
	ResourceVersion int64  `json:"resourceVersion"`
	Incarnation     string `json:"batonIncarnation,omitempty"`
}

type resourceVersionList struct {
	Versions []ResourceVersion `json:"resourceVersions"`
}

// StatusHash is one entry of a status resync request or digest.
type StatusHash struct {
	ResourceID string `json:"resourceID"`
	StatusHash string `json:"statusHash,omitempty"`
}

type statusHashList struct {
	Hashes []StatusHash `json:"statusHashes"`
}

// Encode turns a protocol message into an event with the given source
// attribute. now is the event time (and the deletion timestamp of a
// deleting Spec) unless the message carries its own time. The caller sets ID.
func Encode(m protocol.Message, source string, now time.Time) (Event, error) {
	e := Event{Source: source, Time: now.UTC()}
	e.set(ExtClusterName, m.Consumer)
	var data any
	switch m.Type {
	case protocol.TypeSpec:
		if m.Spec == nil {
			return e, fmt.Errorf("spec message: empty: %w", ErrMalformed)
		}
		data = m.Spec.Body
		encodeSpec(&e, m.Spec)
	case protocol.TypeSpecAck:
		if m.SpecAck == nil {
			return e, fmt.Errorf("spec ack message: empty: %w", ErrMalformed)
		}
		e.Type = TypeSpecAck
		e.set(ExtResourceID, m.SpecAck.BundleID)
		e.setInt(ExtResourceVersion, m.SpecAck.Generation)
		e.set(ExtGone, m.SpecAck.Gone)
	case protocol.TypeStatus:
		if m.Status == nil {
			return e, fmt.Errorf("status message: empty: %w", ErrMalformed)
		}
		data = sourceStatusData{Conditions: m.Status.Reported.Conditions,
			ResourceStatus: manifestConditions(m.Status.Reported.ResourceStatus)}
		encodeStatus(&e, m.Status)
	case protocol.TypeStatusAck:
		if m.StatusAck == nil {
			return e, fmt.Errorf("status ack message: empty: %w", ErrMalformed)
		}
		e.Type = TypeStatusAck
		e.set(ExtResourceID, m.StatusAck.BundleID)
		e.set(ExtEpoch, m.StatusAck.Epoch)
		e.setInt(ExtRevision, m.StatusAck.Revision)
	case protocol.TypeHello:
		if m.Hello == nil {
			return e, fmt.Errorf("hello message: empty: %w", ErrMalformed)
		}
		e.Type = TypeSpecResync
		e.set(ExtEpoch, m.Hello.Epoch)
		if m.Hello.Agent != "" {
			e.set(ExtAgent, m.Hello.Agent)
		}
		e.setInt(ExtBatch, int64(m.Hello.Batch))
		e.setInt(ExtBatches, int64(m.Hello.Batches))
		data = helloData(m.Hello.Held, m.Hello.Incarnations)
	case protocol.TypeHeartbeat:
		if m.Heartbeat == nil {
			return e, fmt.Errorf("heartbeat message: empty: %w", ErrMalformed)
		}
		e.Type = TypeHeartbeat
		e.Time = m.Heartbeat.At
		e.set(ExtEpoch, m.Heartbeat.Epoch)
		e.setInt(ExtBatch, int64(m.Heartbeat.Batch))
		e.setInt(ExtBatches, int64(m.Heartbeat.Batches))
		data = digestData(m.Heartbeat.Digest)
	case protocol.TypeStatusRequest:
		if m.StatusRequest == nil {
			return e, fmt.Errorf("status request message: empty: %w", ErrMalformed)
		}
		e.Type = TypeStatusResync
		l := statusHashList{Hashes: []StatusHash{}}
		for _, id := range m.StatusRequest.BundleIDs {
			l.Hashes = append(l.Hashes, StatusHash{ResourceID: id})
		}
		data = l
	case protocol.TypeSession:
		if m.Session == nil {
			return e, fmt.Errorf("session message: empty: %w", ErrMalformed)
		}
		e.Type = TypeSession
		e.set(ExtAgent, m.Session.Agent)
		e.set(ExtActive, m.Session.Active)
		e.set(ExtHolder, m.Session.Holder)
		e.setInt(ExtRetryMillis, m.Session.RetryAfter.Milliseconds())
	default:
		return e, fmt.Errorf("message type %q: unknown: %w", m.Type, ErrMalformed)
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return e, fmt.Errorf("%s message: encode data: %w", m.Type, err)
		}
		e.Data = b
	}
	return e, nil
}

func encodeSpec(e *Event, s *protocol.Spec) {
	switch {
	case s.Deleting:
		e.Type = TypeSpecDelete
		e.set(ExtDeletionTimestamp, e.Time)
	case s.Generation == 1:
		e.Type = TypeSpecCreate
	default:
		e.Type = TypeSpecUpdate
	}
	e.set(ExtResourceID, s.BundleID)
	e.setInt(ExtResourceVersion, s.Generation)
	e.set(ExtOriginalSource, s.Source)
	if s.Incarnation != "" {
		e.set(ExtIncarnation, s.Incarnation)
	}
	meta, _ := json.Marshal(s.Meta) // ObjectMeta holds only strings and maps
	e.set(ExtMetadata, string(meta))
}

func encodeStatus(e *Event, s *protocol.Status) {
	e.Type = TypeStatusUpdate
	e.Time = s.At
	e.set(ExtResourceID, s.BundleID)
	e.setInt(ExtResourceVersion, s.Generation)
	e.set(ExtEpoch, s.Epoch)
	e.setInt(ExtRevision, s.Revision)
	e.set(ExtStatusHash, s.Hash)
	e.set(ExtDeleted, s.Deleted)
	if len(s.Reported.ResourceStatus) > 0 {
		obs := make([]api.Observed, len(s.Reported.ResourceStatus))
		for i, r := range s.Reported.ResourceStatus {
			obs[i] = r.Observed
		}
		raw, _ := json.Marshal(obs) // strings, integers, booleans and times only
		e.set(ExtObserved, string(raw))
	}
}

func helloData(held map[string]int64, incs map[string]string) resourceVersionList {
	l := resourceVersionList{Versions: make([]ResourceVersion, 0, len(held))}
	for id, g := range held {
		l.Versions = append(l.Versions, ResourceVersion{ResourceID: id, ResourceVersion: g, Incarnation: incs[id]})
	}
	sort.Slice(l.Versions, func(i, j int) bool { return l.Versions[i].ResourceID < l.Versions[j].ResourceID })
	return l
}

func digestData(digest map[string]string) statusHashList {
	l := statusHashList{Hashes: make([]StatusHash, 0, len(digest))}
	for id, h := range digest {
		l.Hashes = append(l.Hashes, StatusHash{ResourceID: id, StatusHash: h})
	}
	sort.Slice(l.Hashes, func(i, j int) bool { return l.Hashes[i].ResourceID < l.Hashes[j].ResourceID })
	return l
}

// IsKeepalive reports whether e is a transport keepalive (a heartbeat that
// carries no agent epoch) rather than a protocol message.
func IsKeepalive(e Event) bool { return e.Type == TypeHeartbeat && !e.Has(ExtEpoch) }

// Decode turns an event of the server–agent link into a protocol message.
func Decode(e Event) (protocol.Message, error) {
	var m protocol.Message
	var err error
	if m.Consumer, err = e.String(ExtClusterName); err != nil {
		return m, err
	}
	switch e.Type {
	case TypeSpecCreate, TypeSpecUpdate, TypeSpecDelete:
		m.Type = protocol.TypeSpec
		m.Spec, err = decodeSpec(e)
	case TypeSpecAck:
		m.Type = protocol.TypeSpecAck
		m.SpecAck, err = decodeSpecAck(e)
	case TypeStatusUpdate:
		m.Type = protocol.TypeStatus
		m.Status, err = decodeStatus(e)
	case TypeStatusAck:
		m.Type = protocol.TypeStatusAck
		m.StatusAck, err = decodeStatusAck(e)
	case TypeSpecResync:
		m.Type = protocol.TypeHello
		m.Hello, err = decodeHello(e)
	case TypeHeartbeat:
		m.Type = protocol.TypeHeartbeat
		m.Heartbeat, err = decodeHeartbeat(e)
	case TypeStatusResync:
		m.Type = protocol.TypeStatusRequest
		m.StatusRequest, err = decodeStatusRequest(e)
	case TypeSession:
		m.Type = protocol.TypeSession
		m.Session, err = decodeSession(e)
	default:
		err = fmt.Errorf("event type %q: unknown: %w", e.Type, ErrMalformed)
	}
	if err != nil {
		return protocol.Message{}, fmt.Errorf("event %s: %w", e.Type, err)
	}
	return m, nil
}

// first returns the first error of errs.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func unmarshal(e Event, v any) error {
	if len(e.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("data: %v: %w", err, ErrMalformed)
	}
	return nil
}

func decodeSpec(e Event) (*protocol.Spec, error) {
	s := &protocol.Spec{Deleting: e.Type == TypeSpecDelete}
	var err1, err2, err3, err4, err5 error
	s.BundleID, err1 = e.mustString(ExtResourceID)
	s.Generation, err2 = e.Int(ExtResourceVersion)
	s.Source, err3 = e.String(ExtOriginalSource)
	s.Meta, err4 = decodeMeta(e)
	s.Incarnation, err5 = e.String(ExtIncarnation)
	if err := first(err1, err2, err3, err4, err5, unmarshal(e, &s.Body)); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeMeta(e Event) (api.ObjectMeta, error) {
	var meta api.ObjectMeta
	raw, err := e.String(ExtMetadata)
	if err != nil || raw == "" {
		return meta, err
	}
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return meta, fmt.Errorf("extension %s: %v: %w", ExtMetadata, err, ErrMalformed)
	}
	return meta, nil
}

func decodeSpecAck(e Event) (*protocol.SpecAck, error) {
	a := &protocol.SpecAck{}
	var err1, err2, err3 error
	a.BundleID, err1 = e.mustString(ExtResourceID)
	a.Generation, err2 = e.Int(ExtResourceVersion)
	a.Gone, err3 = e.Bool(ExtGone)
	return a, first(err1, err2, err3)
}

func decodeStatus(e Event) (*protocol.Status, error) {
	s := &protocol.Status{At: e.Time}
	var err1, err2, err3, err4, err5, err6 error
	s.BundleID, err1 = e.mustString(ExtResourceID)
	s.Generation, err2 = e.Int(ExtResourceVersion)
	s.Epoch, err3 = e.String(ExtEpoch)
	s.Revision, err4 = e.Int(ExtRevision)
	s.Hash, err5 = e.String(ExtStatusHash)
	s.Deleted, err6 = e.Bool(ExtDeleted)
	if err := first(err1, err2, err3, err4, err5, err6, unmarshal(e, &s.Reported)); err != nil {
		return nil, err
	}
	if raw, err := e.String(ExtObserved); err != nil {
		return nil, err
	} else if raw != "" {
		var obs []api.Observed
		if err := json.Unmarshal([]byte(raw), &obs); err != nil || len(obs) != len(s.Reported.ResourceStatus) {
			return nil, fmt.Errorf("extension %s: want one entry per resourceStatus (%d): %w", ExtObserved, len(s.Reported.ResourceStatus), ErrMalformed)
		}
		for i := range obs {
			s.Reported.ResourceStatus[i].Observed = obs[i]
		}
	}
	if s.Hash == "" {
		s.Hash = protocol.HashStatus(s.Reported)
	}
	return s, nil
}

func decodeStatusAck(e Event) (*protocol.StatusAck, error) {
	a := &protocol.StatusAck{}
	var err1, err2, err3 error
	a.BundleID, err1 = e.mustString(ExtResourceID)
	a.Epoch, err2 = e.String(ExtEpoch)
	a.Revision, err3 = e.Int(ExtRevision)
	return a, first(err1, err2, err3)
}

func decodeHello(e Event) (*protocol.Hello, error) {
	h := &protocol.Hello{Held: map[string]int64{}}
	var l resourceVersionList
	var err1, err2, err3 error
	h.Epoch, err1 = e.String(ExtEpoch)
	batch, err2 := e.Int(ExtBatch)
	batches, err3 := e.Int(ExtBatches)
	agent, err4 := e.String(ExtAgent)
	if err := first(err1, err2, err3, err4, unmarshal(e, &l)); err != nil {
		return nil, err
	}
	h.Batch, h.Batches, h.Agent = int(batch), int(batches), agent
	for _, v := range l.Versions {
		h.Held[v.ResourceID] = v.ResourceVersion
		if v.Incarnation != "" {
			if h.Incarnations == nil {
				h.Incarnations = map[string]string{}
			}
			h.Incarnations[v.ResourceID] = v.Incarnation
		}
	}
	return h, nil
}

func decodeHeartbeat(e Event) (*protocol.Heartbeat, error) {
	h := &protocol.Heartbeat{Digest: map[string]string{}, At: e.Time}
	var l statusHashList
	var err1, err2, err3 error
	h.Epoch, err1 = e.String(ExtEpoch)
	batch, err2 := e.Int(ExtBatch)
	batches, err3 := e.Int(ExtBatches)
	if err := first(err1, err2, err3, unmarshal(e, &l)); err != nil {
		return nil, err
	}
	h.Batch, h.Batches = int(batch), int(batches)
	for _, v := range l.Hashes {
		h.Digest[v.ResourceID] = v.StatusHash
	}
	return h, nil
}

func decodeStatusRequest(e Event) (*protocol.StatusRequest, error) {
	var l statusHashList
	if err := unmarshal(e, &l); err != nil {
		return nil, err
	}
	r := &protocol.StatusRequest{}
	for _, h := range l.Hashes {
		r.BundleIDs = append(r.BundleIDs, h.ResourceID)
	}
	return r, nil
}

func decodeSession(e Event) (*protocol.Session, error) {
	active, err1 := e.Bool(ExtActive)
	holder, err2 := e.String(ExtHolder)
	retry, err3 := e.Int(ExtRetryMillis)
	agent, err4 := e.String(ExtAgent)
	if err := first(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return &protocol.Session{Agent: agent, Active: active, Holder: holder, RetryAfter: time.Duration(retry) * time.Millisecond}, nil
}
