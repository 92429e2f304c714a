package replica_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// memTransports wires handlers on an in-memory Network.
func memTransports(t *testing.T, handlers map[string]replica.Handler) map[string]replica.Transport {
	n := replicatest.NewNetwork(1)
	t.Cleanup(n.Wait)
	out := map[string]replica.Transport{}
	for name, h := range handlers {
		n.Register(name, h)
		out[name] = n.Transport(name)
	}
	return out
}

// realSocketTimeout is the DialTimeout of the tests' TCP transports: the
// default second also bounds writing the hello, which a loaded machine can
// miss, and then every call fails during the backoff. No test here is
// about a slow dial, so the bound only has to catch a hang.
const realSocketTimeout = time.Minute

// tcpTransports starts one TCPTransport per node on a loopback listener.
func tcpTransports(t *testing.T, handlers map[string]replica.Handler) map[string]replica.Transport {
	return startTCP(t, handlers)
}

// startTCP is tcpTransports for tests and benchmarks.
func startTCP(t testing.TB, handlers map[string]replica.Handler) map[string]replica.Transport {
	t.Helper()
	var mu sync.Mutex
	addrs := map[string]string{}
	resolve := func(node string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		a, ok := addrs[node]
		return a, ok
	}
	out := map[string]replica.Transport{}
	for name, h := range handlers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		addrs[name] = ln.Addr().String()
		mu.Unlock()
		cfg := replica.DefaultTCPConfig()
		cfg.Self, cfg.Resolve, cfg.Logger = name, resolve, testkit.Logger(t)
		cfg.DialTimeout = realSocketTimeout
		tr, err := replica.NewTCPTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- tr.Serve(ln, h) }()
		t.Cleanup(func() {
			if err := tr.Close(); err != nil {
				t.Errorf("close %s: %v", name, err)
			}
			if err := <-served; err != nil {
				t.Errorf("serve %s: %v", name, err)
			}
		})
		out[name] = tr
	}
	return out
}

func TestTransportConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) { replicatest.TestTransportInBubble(t, memTransports) })
	t.Run("tcp", func(t *testing.T) { replicatest.TestTransport(t, tcpTransports) })
}
