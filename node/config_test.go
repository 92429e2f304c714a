package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// TestValidateWildcardRPCNeedsAdvertise: the RPC address is advertised to
// peers as bound. A wildcard host ("0.0.0.0", "::", empty) dialled by a
// peer reaches the peer itself, so its "replica" acknowledgements would come
// from its own store: a write acknowledged by W nodes would sit on one.
func TestValidateWildcardRPCNeedsAdvertise(t *testing.T) {
	for _, tc := range []struct {
		rpc, advertise string
		wantErr        bool
	}{
		{"127.0.0.1:7001", "", false},
		{"10.1.2.3:7001", "", false}, // with gossip on 10.1.2.3 too, below
		{"0.0.0.0:7001", "", true},
		{"[::]:7001", "", true},
		{":7001", "", true},
		{"0.0.0.0:7001", "10.1.2.3", false},
		{":7001", "10.1.2.4", false},
	} {
		cfg := DefaultConfig()
		cfg.Listen.RPC, cfg.Listen.Advertise = tc.rpc, tc.advertise
		if tc.advertise != "" {
			// The other listeners on wildcards too: a loopback listener
			// cannot be reached at an advertised routable address.
			cfg.Listen.Gossip, cfg.Listen.HTTP, cfg.Listen.RESP = "0.0.0.0:9001", "0.0.0.0:8001", "0.0.0.0:6380"
		}
		if strings.HasPrefix(tc.rpc, "10.") {
			cfg.Listen.Gossip, cfg.Listen.HTTP, cfg.Listen.RESP = "10.1.2.3:9001", "10.1.2.3:8001", "10.1.2.3:6380"
		}
		err := cfg.Validate()
		if gotErr := err != nil; gotErr != tc.wantErr {
			t.Errorf("rpc %q advertise %q: Validate = %v, want error %v", tc.rpc, tc.advertise, err, tc.wantErr)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), "listen.rpc") || !strings.Contains(err.Error(), "listen.advertise")) {
			t.Errorf("rpc %q: error %q should name listen.rpc and listen.advertise", tc.rpc, err)
		}
	}
}

// TestValidateLoopbackMismatch: peers learn a node's RPC, HTTP and RESP
// addresses from gossip. One advertised on loopback while gossip is not
// makes every peer on another host dial its own loopback, where its own
// node answers for this one (W=all acknowledged with one copy); the
// reverse makes a loopback-only cluster advertise an address it does not
// listen on. Validate refuses both, naming the key.
func TestValidateLoopbackMismatch(t *testing.T) {
	for _, tc := range []struct {
		name                               string
		gossip, rpc, http, resp, advertise string
		wantKey                            string // "" = valid
	}{
		{"all loopback", "127.0.0.1:9001", "127.0.0.1:7001", "127.0.0.1:8001", "127.0.0.1:6380", "", ""},
		{"all on one address", "10.0.0.5:9001", "10.0.0.5:7001", "10.0.0.5:8001", "10.0.0.5:6380", "", ""},
		{"client ports on a wildcard", "10.0.0.5:9001", "10.0.0.5:7001", "0.0.0.0:8001", ":6380", "", ""},
		{"rpc on loopback", "10.0.0.5:9001", "127.0.0.1:7001", "10.0.0.5:8001", "10.0.0.5:6380", "", "listen.rpc"},
		{"http on loopback", "10.0.0.5:9001", "10.0.0.5:7001", "127.0.0.1:8001", "10.0.0.5:6380", "", "listen.http"},
		{"resp on localhost", "10.0.0.5:9001", "10.0.0.5:7001", "10.0.0.5:8001", "localhost:6380", "", "listen.resp"},
		{"ipv6 loopback", "10.0.0.5:9001", "[::1]:7001", "10.0.0.5:8001", "10.0.0.5:6380", "", "listen.rpc"},
		{"gossip on a wildcard, rpc on loopback", "0.0.0.0:9001", "127.0.0.1:7001", "0.0.0.0:8001", "0.0.0.0:6380", "", "listen.rpc"},
		{"reverse: gossip on loopback", "127.0.0.1:9001", "10.0.0.5:7001", "127.0.0.1:8001", "127.0.0.1:6380", "", "listen.rpc"},
		{"advertise over wildcards", "0.0.0.0:9001", "0.0.0.0:7001", "0.0.0.0:8001", "0.0.0.0:6380", "10.0.0.5", ""},
		{"advertise for a loopback listener", "10.0.0.5:9001", "127.0.0.1:7001", "10.0.0.5:8001", "10.0.0.5:6380", "10.0.0.5", "listen.rpc"},
	} {
		cfg := DefaultConfig()
		cfg.Listen = ListenConfig{Gossip: tc.gossip, RPC: tc.rpc, HTTP: tc.http, RESP: tc.resp, Advertise: tc.advertise}
		err := cfg.Validate()
		switch {
		case tc.wantKey == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		case tc.wantKey != "" && (err == nil || !strings.Contains(err.Error(), "config "+tc.wantKey+":")):
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.name, err, tc.wantKey)
		}
	}
}

// TestValidateZone: node.zone is optional and, when set, a short name
// without spaces or slashes; the error names the key.
func TestValidateZone(t *testing.T) {
	for _, tc := range []struct {
		zone    string
		wantErr bool
	}{
		{"", false},
		{"eu-west-1a", false},
		{"rack 7", true},
		{"dc/1", true},
		{strings.Repeat("z", 65), true},
	} {
		cfg := DefaultConfig()
		cfg.Node.Zone = tc.zone
		err := cfg.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("zone %q: Validate = %v, want error %v", tc.zone, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "node.zone") {
			t.Errorf("zone %q: error %q should name node.zone", tc.zone, err)
		}
	}
}

// TestValidateMaxSiblings: limits.max_siblings may not pass the bound every
// decoder of a sibling set applies (vclock.MaxSiblings): a key allowed
// more versions could be neither replicated nor hinted. 0 (no cap) stays
// valid.
func TestValidateMaxSiblings(t *testing.T) {
	for _, tc := range []struct {
		max     int
		wantErr bool
	}{
		{0, false},
		{100, false},
		{vclock.MaxSiblings, false},
		{vclock.MaxSiblings + 1, true},
		{-1, true},
	} {
		cfg := DefaultConfig()
		cfg.Limits.MaxSiblings = tc.max
		err := cfg.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("max_siblings %d: Validate = %v, want error %v", tc.max, err, tc.wantErr)
		}
		if err != nil && (!strings.Contains(err.Error(), "limits.max_siblings") || !strings.Contains(err.Error(), fmt.Sprint(vclock.MaxSiblings))) {
			t.Errorf("max_siblings %d: error %q should name limits.max_siblings and %d", tc.max, err, vclock.MaxSiblings)
		}
	}
}

// TestValidateRESPLimits: the RESP connection cap and idle timeout take 0
// (off) and positive values, the timeout in whole seconds; anything else
// is refused, naming the key.
func TestValidateRESPLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*LimitsConfig)
		wantKey string // "" when valid
	}{
		{"defaults", func(*LimitsConfig) {}, ""},
		{"no cap", func(l *LimitsConfig) { l.RESPMaxClients = 0 }, ""},
		{"cap of one", func(l *LimitsConfig) { l.RESPMaxClients = 1 }, ""},
		{"negative cap", func(l *LimitsConfig) { l.RESPMaxClients = -1 }, "limits.resp_max_clients"},
		{"timeout", func(l *LimitsConfig) { l.RESPIdleTimeout = 5 * time.Minute }, ""},
		{"negative timeout", func(l *LimitsConfig) { l.RESPIdleTimeout = -time.Second }, "limits.resp_idle_timeout"},
		{"fraction of a second", func(l *LimitsConfig) { l.RESPIdleTimeout = 1500 * time.Millisecond }, "limits.resp_idle_timeout"},
		{"a nanosecond", func(l *LimitsConfig) { l.RESPIdleTimeout = 1 }, "limits.resp_idle_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.set(&cfg.Limits)
			err := cfg.Validate()
			if (err != nil) != (tc.wantKey != "") {
				t.Fatalf("Validate = %v, want error naming %q", err, tc.wantKey)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}
