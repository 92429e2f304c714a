package gossip

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/testkit"
)

// TestKeyRotation: three members rotate from k1 to k2 while running, one
// step at a time on every member, and keep talking throughout (a member
// that knows only k2 joins them at the end); a member left with only k1
// is cut off once k1 is removed everywhere.
func TestKeyRotation(t *testing.T) { synctest.Test(t, testKeyRotation) }

func testKeyRotation(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	k1 := []byte("0123456789abcdef")
	k2 := []byte("fedcba9876543210fedcba98") // another length: AES-192
	a := startNode(t, top, "a", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{k1}})
	seeds := []string{a.g.LocalAddr()}
	b := startNode(t, top, "b", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{k1}, seeds: seeds})
	c := startNode(t, top, "c", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{k1}, seeds: seeds})
	stale := startNode(t, top, "stale", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{k1}, seeds: seeds})
	rotating := []*testNode{a, b, c}
	all := append(slices.Clone(rotating), stale)
	waitRing(t, all, []string{"a", "b", "c", "stale"})
	waitAlive(t, all)

	steps := [][][]byte{
		{k1, k2}, // accept k2 everywhere before anyone sends with it
		{k2, k1}, // send with k2, still accept k1
		{k2},     // forget k1
	}
	for i, keys := range steps {
		for _, n := range rotating {
			if err := n.g.SetKeys(keys); err != nil {
				t.Fatalf("step %d on %s: %v", i+1, n.name, err)
			}
			st := n.g.Keyring()
			if st.Primary != KeyFingerprint(keys[0]) || len(st.Keys) != len(keys) {
				t.Fatalf("step %d on %s: keyring %+v", i+1, n.name, st)
			}
		}
		// Several probe and push-pull rounds under the new keyring: a
		// member that could not read the others would be declared dead.
		time.Sleep(5 * time.Second)
		waitAlive(t, rotating)
	}

	late := startNode(t, top, "late", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{k2}, seeds: seeds})
	// late never saw stale alive, so it holds stale's row back (as any
	// row of a node memberlist has not seen join); the others keep it:
	// ring membership is not liveness.
	waitRing(t, rotating, []string{"a", "b", "c", "late", "stale"})
	waitRing(t, []*testNode{late}, []string{"a", "b", "c", "late"})
	waitAlive(t, append(slices.Clone(rotating), late))

	testkit.Eventually(t, converge, "the member with only k1 seen dead after k1 was removed", func() bool {
		for _, n := range rotating {
			if n.g.Liveness("stale") != Dead {
				return false
			}
		}
		return true
	})
	if stale.g.Alive("late") || slices.Contains(stale.g.RingMembers(), "late") {
		t.Errorf("the member with only k1 learnt of a member that joined after k1 was removed: %v", stale.g.RingMembers())
	}
	if !a.logw.contains("encryption key mismatch") && !b.logw.contains("encryption key mismatch") && !c.logw.contains("encryption key mismatch") {
		t.Error("no member logged the stale member's undecryptable traffic")
	}
}

func TestSetKeysRefusals(t *testing.T) { synctest.Test(t, testSetKeysRefusals) }

func testSetKeysRefusals(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	k1 := []byte("0123456789abcdef")
	plain := startNode(t, top, "p", t.TempDir(), nodeOpts{net: mn})
	if err := plain.g.SetKeys([][]byte{k1}); !errors.Is(err, ErrNoEncryption) {
		t.Errorf("SetKeys on a node started without keys: %v, want ErrNoEncryption", err)
	}
	if st := plain.g.Keyring(); st.Encrypted || len(st.Keys) != 0 {
		t.Errorf("keyring of a node without keys: %+v", st)
	}
	enc := startNode(t, top, "e", t.TempDir(), nodeOpts{net: mn, key: k1})
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short":     {[]byte("short")},
		"duplicate": {k1, k1},
		"too many":  slices.Repeat([][]byte{nil}, MaxKeys+1),
	} {
		if err := enc.g.SetKeys(keys); !errors.Is(err, ErrBadConfig) {
			t.Errorf("SetKeys(%s): %v, want ErrBadConfig", name, err)
		}
	}
	if st := enc.g.Keyring(); st.Primary != KeyFingerprint(k1) || len(st.Keys) != 1 {
		t.Errorf("a refused SetKeys changed the keyring: %+v", st)
	}
}

// SetKeys leaves exactly the listed keys, however many it removes and
// wherever they sit in the keyring.
func TestSetKeysRemovesEveryUnlistedKey(t *testing.T) {
	synctest.Test(t, testSetKeysRemovesEveryUnlistedKey)
}

func testSetKeysRemovesEveryUnlistedKey(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	p := []byte("pppppppppppppppp")
	a := []byte("aaaaaaaaaaaaaaaa")
	b := []byte("bbbbbbbbbbbbbbbb")
	c := []byte("cccccccccccccccc")
	n := startNode(t, top, "n", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{p, a, b, c}})
	for i, keys := range [][][]byte{
		{p},          // three removed in a row after the primary
		{p, a, b, c}, // back to four
		{c},          // a new primary, the old one and two more removed
		{a, p, b, c},
		{b, a},
	} {
		if err := n.g.SetKeys(keys); err != nil {
			t.Fatalf("step %d: SetKeys: %v", i+1, err)
		}
		st := n.g.Keyring()
		want := make([]string, len(keys))
		for j, k := range keys {
			want[j] = KeyFingerprint(k)
		}
		got := slices.Clone(st.Keys)
		slices.Sort(got[1:])
		slices.Sort(want[1:])
		if st.Primary != want[0] || !slices.Equal(got, want) {
			t.Fatalf("step %d: keyring %+v, want %v", i+1, st, want)
		}
	}
}

// Keyring may be read while SetKeys runs (the race detector judges).
func TestKeyringWhileSetKeys(t *testing.T) { synctest.Test(t, testKeyringWhileSetKeys) }

func testKeyringWhileSetKeys(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	p := []byte("pppppppppppppppp")
	a := []byte("aaaaaaaaaaaaaaaa")
	b := []byte("bbbbbbbbbbbbbbbb")
	n := startNode(t, top, "n", t.TempDir(), nodeOpts{net: mn, keys: [][]byte{p, a, b}})
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			if st := n.g.Keyring(); !st.Encrypted || len(st.Keys) == 0 || len(st.Keys) > 3 {
				t.Errorf("keyring read during SetKeys: %+v", st)
				return
			}
			if i == 0 {
				close(started)
			}
		}
	}()
	<-started
	for i := range 400 {
		keys := [][]byte{p, a, b}
		if i%2 == 1 {
			keys = [][]byte{p}
		}
		if err := n.g.SetKeys(keys); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

func TestExposedWithoutKeys(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, tc := range []struct {
		bind string
		keys [][]byte
		want bool
	}{
		{"127.0.0.1", nil, false},
		{"127.0.0.2", nil, false},
		{"::1", nil, false},
		{"0.0.0.0", nil, true},
		{"::", nil, true},
		{"10.1.2.3", nil, true},
		{"10.1.2.3", [][]byte{key}, false},
		{"0.0.0.0", [][]byte{key}, false},
	} {
		if got := exposedWithoutKeys(Config{Keys: tc.keys}, tc.bind); got != tc.want {
			t.Errorf("bind %s, %d keys: exposed %v, want %v", tc.bind, len(tc.keys), got, tc.want)
		}
	}
	if exposedWithoutKeys(Config{Transport: &gossiptest.Transport{}}, "0.0.0.0") {
		t.Error("an injected transport reported as exposed")
	}
}
