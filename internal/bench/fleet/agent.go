package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/agent/report"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// simAgent is one simulated agent: a real protocol client (Hello, SpecAck,
// revisioned Status through the agent's reporter, digest heartbeats) whose
// cluster is an in-memory object per bundle.
type simAgent struct {
	consumer string
	conn     protocol.Conn
	rep      *report.Reporter
	acks     *protocol.AckQueue[protocol.SpecAck]
	log      *slog.Logger

	mu      sync.Mutex
	bundles map[string]*simObject // bundle id → its one observed object
	epoch   string
	helloed chan struct{}
	once    sync.Once
	stats   agentStats
}

type agentStats struct {
	sessions int
	specs    int
}

// simObject is the in-memory stand-in for the ConfigMap a bundle observes.
type simObject struct {
	gen     int64 // spec generation held
	name    string
	uid     string
	rv      int64
	value   int64 // the feedback value ("v<value>")
	changed time.Time
}

func newSimAgent(consumer string, conn protocol.Conn, heartbeat time.Duration, log *slog.Logger) *simAgent {
	epoch := fmt.Sprintf("sim-%s-%d", consumer, time.Now().UnixNano())
	a := &simAgent{consumer: consumer, conn: conn, log: log, bundles: map[string]*simObject{},
		epoch: epoch, helloed: make(chan struct{}),
		acks: protocol.NewAckQueue(func(q, n protocol.SpecAck) bool { return n.Generation >= q.Generation })}
	a.rep = report.New(conn, report.WithConsumer(consumer), report.WithEpoch(epoch),
		report.WithHeartbeat(heartbeat), report.WithLogger(log))
	return a
}

// run serves the link until ctx ends.
func (a *simAgent) run(ctx context.Context) {
	go a.acks.Run(ctx, func(ctx context.Context, ack protocol.SpecAck) {
		err := a.conn.Send(ctx, protocol.Message{Type: protocol.TypeSpecAck, Consumer: a.consumer, SpecAck: &ack})
		if err != nil && !errors.Is(err, protocol.ErrDisconnected) && ctx.Err() == nil {
			a.log.Debug("sim agent: spec ack not sent", "consumer", a.consumer, "err", err)
		}
	})
	go a.sessions(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-a.conn.Recv():
			if !ok {
				return
			}
			if a.rep.Handle(m) {
				continue
			}
			if m.Type == protocol.TypeSpec && m.Spec != nil {
				a.onSpec(m.Spec)
			}
		}
	}
}

// sessions sends Hello on every new session, then resumes the reporter.
func (a *simAgent) sessions(ctx context.Context) {
	started := false
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-a.conn.Up():
			if !ok {
				return
			}
			a.mu.Lock()
			held := make(map[string]int64, len(a.bundles))
			for id, o := range a.bundles {
				held[id] = o.gen
			}
			a.stats.sessions++
			a.mu.Unlock()
			if err := a.sendHello(ctx, held); err != nil {
				continue
			}
			if !started {
				started = true
				go func() { _ = a.rep.Start(ctx) }()
			}
			a.rep.Resume()
			a.once.Do(func() { close(a.helloed) })
		}
	}
}

// sendHello sends the held generations in the parts a real agent sends.
func (a *simAgent) sendHello(ctx context.Context, held map[string]int64) error {
	for _, m := range protocol.Hellos(a.consumer, protocol.Hello{Agent: a.consumer, Epoch: a.epoch, Held: held}) {
		if err := a.conn.Send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (a *simAgent) onSpec(s *protocol.Spec) {
	a.mu.Lock()
	a.stats.specs++
	o := a.bundles[s.BundleID]
	if s.Deleting {
		delete(a.bundles, s.BundleID)
		a.mu.Unlock()
		a.rep.MarkDeleted(s.BundleID, s.Generation)
		a.acks.Add(s.BundleID, protocol.SpecAck{BundleID: s.BundleID, Generation: s.Generation, Gone: true})
		return
	}
	if o != nil && s.Generation <= o.gen {
		gen := o.gen
		a.mu.Unlock()
		a.acks.Add(s.BundleID, protocol.SpecAck{BundleID: s.BundleID, Generation: gen})
		return
	}
	if o == nil {
		o = &simObject{name: objectName(s), uid: "uid-" + s.BundleID, rv: 1, changed: time.Now()}
		a.bundles[s.BundleID] = o
		a.rep.Revive(s.BundleID)
	}
	o.gen = s.Generation
	st := o.status()
	a.mu.Unlock()
	a.acks.Add(s.BundleID, protocol.SpecAck{BundleID: s.BundleID, Generation: s.Generation})
	a.rep.Set(s.BundleID, s.Generation, st)
}

// change moves the object of bundle id to a new value, as a live change in
// the cluster would, and returns the new value (false: not held yet).
func (a *simAgent) change(id string) (int64, bool) {
	a.mu.Lock()
	o := a.bundles[id]
	if o == nil {
		a.mu.Unlock()
		return 0, false
	}
	o.value++
	o.rv++
	o.changed = time.Now()
	v, gen, st := o.value, o.gen, o.status()
	a.mu.Unlock()
	a.rep.Set(id, gen, st)
	return v, true
}

// held returns the ids of the bundles the agent holds.
func (a *simAgent) held() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.bundles))
}

// valueOf returns the current value of bundle id's object.
func (a *simAgent) valueOf(id string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.bundles[id]
	if o == nil {
		return 0, false
	}
	return o.value, true
}

func objectName(s *protocol.Spec) string {
	if len(s.Body.ManifestConfigs) > 0 {
		return s.Body.ManifestConfigs[0].ResourceIdentifier.Name
	}
	return s.BundleID
}

// status is what the real evaluator reports for a ReadOnly ConfigMap with
// one JSONPath feedback rule. Callers hold the agent's lock.
func (o *simObject) status() api.ReportedStatus {
	at := metav1.NewTime(o.changed.UTC().Truncate(time.Second))
	val := FeedbackValue(o.value)
	cond := func(t, reason string) metav1.Condition {
		return metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: o.gen, LastTransitionTime: at}
	}
	return api.ReportedStatus{
		Conditions: []metav1.Condition{cond("Applied", "AppliesComplete"), cond("Available", "ResourcesAvailable")},
		ResourceStatus: []api.ResourceStatus{{
			ResourceMeta: workv1.ManifestResourceMeta{Version: "v1", Kind: "ConfigMap", Resource: "configmaps",
				Name: o.name, Namespace: Namespace},
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{
				Name: FeedbackName, Value: workv1.FieldValue{Type: workv1.String, String: &val}}}},
			Conditions: []metav1.Condition{cond("Applied", "Applied"), cond("Available", "ResourceAvailable"),
				cond("StatusFeedbackSynced", "StatusFeedbackSynced")},
			Observed: api.Observed{UID: o.uid, ResourceVersion: strconv.FormatInt(o.rv, 10), Exists: true,
				ObservedAt: o.changed.UTC()},
		}},
	}
}

// FeedbackValue is the feedback string of value n.
func FeedbackValue(n int64) string { return "v" + strconv.FormatInt(n, 10) }
