package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/grpc"
)

// dropStatusEnv names the test-only fault hook of `baton agent`: set to N,
// the agent's transport silently drops the first N status messages it sends,
// as a lossy network or broker would. End-to-end tests use it to prove that
// lost status heals; never set it in production.
const dropStatusEnv = "BATON_TEST_DROP_STATUS"

func init() {
	dialServer = func(ctx context.Context, addr, consumer string, log *slog.Logger) (protocol.Conn, error) {
		opts := grpc.DialOptions{Logger: log}
		if v := os.Getenv(dropStatusEnv); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s=%q: want a non-negative number of status messages to drop", dropStatusEnv, v)
			}
			opts.Drop = dropFirstStatus(n)
		}
		return grpc.Dial(ctx, addr, consumer, opts)
	}
}

// dropFirstStatus returns a Drop hook that drops the first n status messages.
func dropFirstStatus(n int64) func(protocol.Message) bool {
	var seen atomic.Int64
	return func(m protocol.Message) bool {
		return m.Type == protocol.TypeStatus && seen.Add(1) <= n
	}
}
