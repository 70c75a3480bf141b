package server

import (
	"strings"
	"testing"
)

func TestSafeAddr(t *testing.T) {
	for _, c := range []struct {
		addr          string
		authed, allow bool
		want, err     string
	}{
		{addr: ":8000", want: "127.0.0.1:8000"},
		{addr: "127.0.0.1:0", want: "127.0.0.1:0"},
		{addr: "localhost:8000", want: "localhost:8000"},
		{addr: "[::1]:8000", want: "[::1]:8000"},
		{addr: "0.0.0.0:8000", err: "--insecure-allow-unauthenticated"},
		{addr: "10.1.2.3:8000", err: "--auth-config"},
		{addr: "0.0.0.0:8000", allow: true, want: "0.0.0.0:8000"},
		{addr: ":8000", authed: true, want: ":8000"},
		{addr: "nonsense", err: "missing port"},
	} {
		got, err := SafeAddr("--http-addr", c.addr, c.authed, c.allow)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("SafeAddr(%q) = %q, %v; want an error with %q", c.addr, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("SafeAddr(%q, auth=%v, allow=%v) = %q, %v; want %q", c.addr, c.authed, c.allow, got, err, c.want)
		}
	}
}
