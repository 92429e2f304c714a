package vclock

import "testing"

func TestMintMinCounter(t *testing.T) {
	_, local := Mint(nil, "a", Write{Value: []byte("v1"), Blind: true})
	w := Write{Value: []byte("v2"), Blind: true}
	if got := NextCounter(local, "a", w); got != 2 {
		t.Fatalf("NextCounter = %d, want 2", got)
	}
	v, _ := Mint(local, "a", w)
	if v.Dot.Counter != 2 {
		t.Fatalf("without a floor the dot is (a,%d), want (a,2)", v.Dot.Counter)
	}
	w.MinCounter = 40
	v, _ = Mint(local, "a", w)
	if v.Dot.Counter != 40 {
		t.Fatalf("with floor 40 the dot is (a,%d)", v.Dot.Counter)
	}
	// A forgotten key (nil local) minted with a floor never reuses (a,1).
	v, _ = Mint(nil, "a", Write{Value: []byte("v3"), MinCounter: 41})
	if v.Dot.Counter != 41 {
		t.Fatalf("forgotten key minted (a,%d), want (a,41)", v.Dot.Counter)
	}
	// A context naming a higher counter of the actor still wins over a lower floor.
	ctx := Clock{{Actor: "a", Counter: 90}}
	w = Write{Value: []byte("v4"), Context: ctx, MinCounter: 50}
	if got := NextCounter(nil, "a", w); got != 91 {
		t.Fatalf("NextCounter with context a:90 = %d, want 91", got)
	}
	if v, _ = Mint(nil, "a", w); v.Dot.Counter != 91 {
		t.Fatalf("minted (a,%d), want (a,91)", v.Dot.Counter)
	}
}
