package report

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

// TestOverPipe runs the Reporter on a real protocol.Pipe with a server that
// acks everything: the first copy of each report is lost and the link goes
// down for a while, yet the server ends up with the latest state.
func TestOverPipe(t *testing.T) {
	p := protocol.NewPipe(64)
	var dropped atomic.Int32
	p.SetDropFromAgent(func(m protocol.Message) bool {
		return m.Type == protocol.TypeStatus && dropped.Add(1) == 1
	})
	r := New(p.Agent(), WithConsumer("c1"), WithCoalesce(time.Millisecond),
		WithResendTimeout(30*time.Millisecond), WithHeartbeat(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = r.Start(ctx) }()

	latest := map[string]string{}
	heartbeat := make(chan map[string]string, 100)
	go func() {
		for m := range p.Server().Recv() {
			switch m.Type {
			case protocol.TypeStatus:
				latest[m.Status.BundleID] = m.Status.Hash // only this goroutine touches it until done
				_ = p.Server().Send(ctx, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &protocol.StatusAck{
					Epoch: m.Status.Epoch, BundleID: m.Status.BundleID, Revision: m.Status.Revision}})
			case protocol.TypeHeartbeat:
				d := map[string]string{}
				for k, v := range latest {
					if m.Heartbeat.Digest[k] == v {
						d[k] = v
					}
				}
				heartbeat <- d
			}
		}
	}()
	go func() {
		for m := range p.Agent().Recv() {
			if !r.Handle(m) {
				t.Errorf("reporter did not handle %s", m.Type)
			}
		}
	}()

	r.Set("b1", 1, status("1.1.1.1", "u1"))
	time.Sleep(10 * time.Millisecond)
	p.SetUp(false)
	r.Set("b1", 1, status("2.2.2.2", "u2"))
	time.Sleep(100 * time.Millisecond)
	p.SetUp(true)
	r.Resume()

	want := protocol.HashStatus(status("2.2.2.2", "u2"))
	for {
		select {
		case d := <-heartbeat:
			if d["b1"] == want {
				if r.Stats().Resent == 0 && dropped.Load() > 0 && r.Stats().SendErrors == 0 {
					t.Errorf("stats = %+v; want resends or send errors", r.Stats())
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("server never matched the agent's latest state")
		}
	}
}
