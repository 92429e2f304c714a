package e2e

import (
	"testing"

	"github.com/ringkv/ringkv/internal/freeport"
)

// freePorts reserves n distinct loopback ports, free for TCP and UDP
// (gossip uses both), from outside the kernel's ephemeral range: the
// nodes started first, dialling each other, would otherwise take one
// before the node it was meant for bound it. Another process could still
// take one before its node binds it; the tests fail loudly if it does.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := freeport.Ports("127.0.0.1", n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
