package replica

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// remoteRecorder is a listener that reports the remote address of every
// connection it accepts: the server-side view a firewall rule matches.
type remoteRecorder struct {
	net.Listener
	remotes chan net.Addr
}

func (l remoteRecorder) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.remotes <- c.RemoteAddr():
		default: // the test reads the first few; more are not news
		}
	}
	return c, err
}

// TestTCPSourceIP checks that a transport with SourceIP dials from it:
// Linux routes all of 127.0.0.0/8 over lo, so 127.0.0.2 works without a
// namespace while the server listens on 127.0.0.1.
func TestTCPSourceIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := remoteRecorder{Listener: ln, remotes: make(chan net.Addr, 8)}
	cfg := DefaultTCPConfig()
	cfg.Self = "srv"
	cfg.Resolve = func(string) (string, bool) { return "", false }
	cfg.DialTimeout = realSocketTimeout
	srv, err := NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(rec, okHandler) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	addr := ln.Addr().String()
	var ap atomic.Pointer[string]
	ap.Store(&addr)
	src := net.ParseIP("127.0.0.2")
	cli := client(t, &ap, func(c *TCPConfig) { c.SourceIP = src })
	src[15] = 9 // the transport keeps its own copy
	if _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); err != nil {
		t.Fatalf("call from 127.0.0.2: %v", err)
	}
	got := (<-rec.remotes).(*net.TCPAddr)
	if !got.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("server saw the connection from %v, want 127.0.0.2", got)
	}
}

func TestTCPConfigSourceIPValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ip   net.IP
		ok   bool
	}{
		{"unset", nil, true},
		{"empty", net.IP{}, true},
		{"v4", net.ParseIP("127.0.0.2"), true},
		{"v6", net.ParseIP("::1"), true},
		{"v4 wildcard", net.IPv4zero, false},
		{"v6 wildcard", net.IPv6unspecified, false},
		{"bad length", net.IP{1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultTCPConfig()
			cfg.Self = "n1"
			cfg.Resolve = func(string) (string, bool) { return "", false }
			cfg.MaxBufferedBytes = int64(cfg.MaxFrameBytes)
			cfg.MaxConnBufferedBytes = int64(cfg.MaxFrameBytes)
			cfg.SourceIP = tc.ip
			err := cfg.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "SourceIP") {
				t.Fatalf("error %q does not name SourceIP", err)
			}
			_, err = NewTCPTransport(cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("NewTCPTransport: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestTCPSourceIPFamilyMismatch: an IPv4 source cannot reach an IPv6
// peer; the call fails as unreachable rather than hanging or panicking.
func TestTCPSourceIPFamilyMismatch(t *testing.T) {
	addr := "[::1]:1"
	var ap atomic.Pointer[string]
	ap.Store(&addr)
	cli := client(t, &ap, func(c *TCPConfig) { c.SourceIP = net.ParseIP("127.0.0.2") })
	_, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call = %v, want ErrUnreachable", err)
	}
}
