package server

import (
	"fmt"
	"net"
	"net/netip"
)

// SafeAddr applies the server's safe default to a listen address: with
// authentication (authenticated) the address is used as given; without,
// an address with no host (":8000") binds the loopback interface only
// (127.0.0.1:8000), and an explicit non-loopback host is refused unless
// allowRemote (--insecure-allow-unauthenticated) says otherwise. flag names
// the option in the error.
func SafeAddr(flag, addr string, authenticated, allowRemote bool) (string, error) {
	if authenticated || allowRemote {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if isLoopback(host) {
		return addr, nil
	}
	return "", fmt.Errorf("%s %s listens beyond this machine, but the server authenticates nobody: "+
		"give --auth-config (see docs/security.md), listen on 127.0.0.1, or pass --insecure-allow-unauthenticated", flag, addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
