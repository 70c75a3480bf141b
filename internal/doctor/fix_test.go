package doctor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// fakeServer reports the stale IP until it was asked to resync and then
// read staleReads more times.
type fakeServer struct {
	mu          sync.Mutex
	resynced    []string
	staleReads  int
	neverFixed  bool
	offlineFor  int // resync requests refused with errOffline
	waitsResync bool
}

var errOffline = errors.New("agent not connected")

func (s *fakeServer) ResyncBundle(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offlineFor > 0 {
		s.offlineFor--
		return errOffline
	}
	s.resynced = append(s.resynced, id)
	return nil
}

func (s *fakeServer) GetBundle(_ context.Context, id string) (*api.ResourceBundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip := "20.9.9.9"
	if s.neverFixed || s.staleReads > 0 || (s.waitsResync && len(s.resynced) == 0) {
		s.staleReads--
		ip = "20.1.2.3"
	}
	b := ipBundle()
	b.Status = &api.BundleStatus{ResourceStatus: []api.ResourceStatus{{ResourceMeta: routerMeta,
		StatusFeedbacks: ipValue(ip), Conditions: available(metav1.ConditionTrue, "")}}}
	return b, nil
}

func TestFixWaitsUntilAgreement(t *testing.T) {
	srv := &fakeServer{staleReads: 2}
	g := mapGetter{"router": service(t, "u", "1", "20.9.9.9")}
	var calls []int
	o := DefaultFixOptions()
	o.Interval = time.Millisecond
	o.Progress = func(agree, total int, _ time.Duration) { calls = append(calls, agree*10+total) }
	res, err := Fix(context.Background(), srv, g, initial(), o)
	if err != nil || !res.OK() {
		t.Fatalf("got %+v, %v", res, err)
	}
	if len(srv.resynced) != 1 || srv.resynced[0] != "b1" {
		t.Errorf("resynced %v; want [b1]", srv.resynced)
	}
	if want := []int{1, 1, 11}; len(calls) != 3 || calls[0] != want[0] || calls[2] != want[2] {
		t.Errorf("progress (agree*10+total) %v; want %v", calls, want)
	}
}

func TestFixTimesOut(t *testing.T) {
	srv := &fakeServer{neverFixed: true}
	g := mapGetter{"router": service(t, "u", "1", "20.9.9.9")}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	o := DefaultFixOptions()
	o.Interval = 5 * time.Millisecond
	res, err := Fix(ctx, srv, g, initial(), o)
	if err == nil || !strings.Contains(err.Error(), "waiting for 1 of 1 bundles") {
		t.Fatalf("got error %v; want a timeout", err)
	}
	if len(res.Mismatches) != 1 || res.Mismatches[0].Reported != "20.1.2.3" {
		t.Errorf("last result %+v; want the stale ip mismatch", res)
	}
}

func TestFixRetriesWhileAgentOffline(t *testing.T) {
	srv := &fakeServer{offlineFor: 2, waitsResync: true}
	g := mapGetter{"router": service(t, "u", "1", "20.9.9.9")}
	var warnings int
	o := DefaultFixOptions()
	o.Interval = time.Millisecond
	o.Retryable = func(err error) bool { return errors.Is(err, errOffline) }
	o.Warn = func(id string, err error) { warnings++ }
	res, err := Fix(context.Background(), srv, g, initial(), o)
	if err != nil || !res.OK() {
		t.Fatalf("got %+v, %v", res, err)
	}
	if warnings != 2 || len(srv.resynced) != 1 {
		t.Errorf("warnings %d, resyncs %v; want 2 warnings then one resync", warnings, srv.resynced)
	}
	srv = &fakeServer{offlineFor: 1}
	o.Retryable = nil
	if _, err := Fix(context.Background(), srv, g, initial(), o); !errors.Is(err, errOffline) {
		t.Errorf("without Retryable: got %v; want the resync error", err)
	}
}

func initial() Result {
	return Result{Mismatches: []Mismatch{{BundleID: "b1", Field: "feedback.ip"}}}
}
