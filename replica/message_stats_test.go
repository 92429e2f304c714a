package replica

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// TestNodeStatsReply: a KindNodeStats answer carries its Stats bytes
// intact through the wire encoding, up to MaxStatsBytes; more is refused
// as ErrProtocol before the bytes are copied.
func TestNodeStatsReply(t *testing.T) {
	req, err := MarshalRequest(Request{Kind: KindNodeStats})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := UnmarshalRequest(req); err != nil || r.Kind != KindNodeStats {
		t.Fatalf("request: %+v %v", r, err)
	}
	if got := KindNodeStats.String(); got != "node_stats" {
		t.Errorf("String() = %q", got)
	}
	for _, c := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"small", 9, true},
		{"at the bound", MaxStatsBytes, true},
		{"past the bound", MaxStatsBytes + 1, false},
	} {
		stats := bytes.Repeat([]byte{0xa5}, c.n)
		b, err := MarshalReply(Response{Stats: stats}, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := UnmarshalReply("n2", b)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrProtocol)) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.ok && !bytes.Equal(resp.Stats, stats) {
			t.Fatalf("%s: %d bytes came back, %d sent", c.name, len(resp.Stats), len(stats))
		}
	}
	// The error may come before the response, and the stats after another
	// field of it.
	raw := encodeRaw(t, map[string]any{"e": map[string]any{"c": "internal", "m": "x"},
		"r": map[string]any{"more": true, "stats": make([]byte, MaxStatsBytes+1)}})
	if _, err := UnmarshalReply("n2", raw); !errors.Is(err, ErrProtocol) {
		t.Fatalf("stats past the bound after an error: %v, want ErrProtocol", err)
	}
}

// TestNodeStatsBoundBeforeAllocating: refusing oversized stats costs a
// small fraction of their size.
func TestNodeStatsBoundBeforeAllocating(t *testing.T) {
	b, err := MarshalReply(Response{Stats: make([]byte, 4*MaxStatsBytes)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = UnmarshalReply("n2", b)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("%v, want ErrProtocol", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Fatalf("refusing %d bytes allocated %d bytes", len(b), got)
	}
}
