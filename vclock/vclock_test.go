package vclock

import (
	"errors"
	"strings"
	"testing"
)

func TestSameContextSameCoordinatorMakesSiblings(t *testing.T) {
	var local Siblings
	_, local = Mint(local, "a", Write{Value: []byte("v1")})
	ctx := local.Context()
	v2, local := Mint(local, "a", Write{Context: ctx, Value: []byte("x")})
	v3, local := Mint(local, "a", Write{Context: ctx, Value: []byte("y")})
	if v2.Dot == v3.Dot {
		t.Fatalf("two writes minted the same dot %v", v2.Dot)
	}
	if len(local) != 2 || string(local[0].Value) != "x" || string(local[1].Value) != "y" {
		t.Fatalf("want siblings x,y; got %+v", local)
	}
	_, local = Mint(local, "a", Write{Context: local.Context(), Value: []byte("z")})
	if len(local) != 1 || string(local[0].Value) != "z" {
		t.Fatalf("merged-context write should replace both siblings; got %+v", local)
	}
}

func TestBlindWriteSupersedesLocal(t *testing.T) {
	var local Siblings
	_, local = Mint(local, "a", Write{Value: []byte("1")})
	_, local = Mint(local, "b", Write{Value: []byte("2")})
	if len(local) != 2 {
		t.Fatalf("want 2 siblings, got %d", len(local))
	}
	_, local = Mint(local, "a", Write{Blind: true, Value: []byte("3")})
	if len(local) != 1 || string(local[0].Value) != "3" {
		t.Fatalf("blind write should leave one version; got %+v", local)
	}
}

func TestMintAboveForeignContext(t *testing.T) {
	// The client saw a:7 elsewhere; the local set knows only a:1.
	var local Siblings
	_, local = Mint(local, "a", Write{Value: []byte("1")})
	v, _ := Mint(local, "a", Write{Context: Clock{{Actor: "a", Counter: 7}}, Value: []byte("2")})
	if v.Dot.Counter != 8 {
		t.Fatalf("dot counter = %d, want 8", v.Dot.Counter)
	}
}

func TestContextRoundTrip(t *testing.T) {
	c := Clock{{Actor: "a", Counter: 3}, {Actor: "b", Counter: 9}}
	got, err := DecodeContextString(EncodeContextString(c))
	if err != nil || !got.Equal(c) {
		t.Fatalf("round trip = %v, %v", got, err)
	}
	for _, bad := range []string{"!!", "AAAA", EncodeContextString(Clock{{Actor: "b", Counter: 1}, {Actor: "a", Counter: 1}})} {
		if _, err := DecodeContextString(bad); !errors.Is(err, ErrBadContext) {
			t.Errorf("DecodeContextString(%q) err = %v, want ErrBadContext", bad, err)
		}
	}
}

// TestForgedContextCounter: a context naming a counter no node could have
// minted is refused before minting, with a message naming it; before, a
// counter of 2^64-1 made the next Mint wrap to 0. A context echoing
// counters the coordinator already holds is always accepted.
func TestForgedContextCounter(t *testing.T) {
	var local Siblings
	_, local = Mint(local, "a", Write{Value: []byte("x")})
	for _, c := range []uint64{1<<64 - 1, CounterLimit + 1} {
		err := CheckMintable(local, Clock{{Actor: "b", Counter: c}})
		if !errors.Is(err, ErrBadContext) || !strings.Contains(err.Error(), "beyond what any node can mint") {
			t.Errorf("counter %d: err = %v", c, err)
		}
	}
	if _, err := DecodeContextString(EncodeContextString(Clock{{Actor: "a", Counter: 1<<64 - 1}})); !errors.Is(err, ErrBadContext) {
		t.Errorf("decoding a counter near overflow: %v", err)
	}
	edge := Clock{{Actor: "a", Counter: CounterLimit}}
	if err := CheckMintable(local, edge); err != nil {
		t.Fatalf("counter at the limit: %v", err)
	}
	// Minting above the limit stays valid, and the contexts it hands out
	// are accepted, write after write.
	v, local := Mint(local, "a", Write{Context: edge, Value: []byte("x")})
	for range 10 {
		if err := CheckMintable(local, local.Context()); err != nil {
			t.Fatalf("context of the node's own set refused: %v", err)
		}
		v, local = Mint(local, "a", Write{Context: local.Context(), Value: []byte("y")})
	}
	if !local.Valid() || v.Dot.Counter != CounterLimit+11 {
		t.Fatalf("after minting above the limit: %+v valid=%v", v.Dot, local.Valid())
	}
}
