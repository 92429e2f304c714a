//go:build !linux

package testkit

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback TCP address at which connections are
// refused: that of a listener closed at once. Unlike on Linux, where the
// port stays held, a test running alongside may take the port meanwhile.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testkit: close: %v", err)
	}
	return addr
}
