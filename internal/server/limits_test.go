package server_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestSlowBodyCutOff: a client that sends its headers and then trickles
// the body is disconnected once the read timeout passes, instead of
// holding a connection and a handler for as long as it likes.
func TestSlowBodyCutOff(t *testing.T) {
	base, _, _ := started(t, server.Options{Store: storetest.NewSQLite(t),
		Limits: server.HTTPLimits{ReadTimeout: 500 * time.Millisecond}})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	fmt.Fprintf(c, "POST /api/maestro/v1/consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	done := make(chan error, 1)
	go func() { // a byte every 100 ms, far slower than any real client
		for i := 0; i < 60; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	answer, _ := io.ReadAll(c) // until the server closes the connection
	took := time.Since(begin)
	if took > 10*time.Second {
		t.Fatalf("the slow client held its connection for %v; the read timeout is 500ms", took)
	}
	if strings.Contains(string(answer), "201 Created") {
		t.Fatalf("the truncated body was accepted: %s", answer)
	}
	t.Logf("slow-body client cut off after %v", took.Round(time.Millisecond))
}
