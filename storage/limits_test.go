package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// TestEntryLimits: the key and value limits hold where data enters the
// store, whatever the path (a peer's store RPC, read repair, handoff), not
// only at the HTTP and RESP front doors: a replicated 5 MiB key was kept.
func TestEntryLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxKeyBytes, cfg.MaxValueBytes = 16, 64
	e := openT(t, cfg)
	set := func(value []byte) vclock.Siblings {
		_, s := vclock.Mint(nil, "peer", vclock.Write{Value: value})
		return s
	}
	cases := []struct {
		name  string
		key   []byte
		value []byte
		err   error
	}{
		{"key at limit", bytes.Repeat([]byte("k"), 16), []byte("v"), nil},
		{"value at limit", []byte("v-at-limit"), make([]byte, 64), nil},
		{"key over limit", bytes.Repeat([]byte("k"), 17), []byte("v"), ErrTooLarge},
		{"5 MiB key", bytes.Repeat([]byte("k"), 5<<20), []byte("v"), ErrTooLarge},
		{"value over limit", []byte("big-value"), make([]byte, 65), ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Apply(t.Context(), c.key, set(c.value))
			if !errors.Is(err, c.err) {
				t.Fatalf("Apply: err = %v, want %v", err, c.err)
			}
			_, err = e.Update(t.Context(), c.key, func(cur vclock.Siblings) (vclock.Siblings, error) {
				_, s := vclock.Mint(cur, e.Incarnation(), vclock.Write{Value: c.value, Blind: true})
				return s, nil
			})
			if !errors.Is(err, c.err) {
				t.Fatalf("Update: err = %v, want %v", err, c.err)
			}
			if c.err != nil && e.Get(c.key) != nil {
				t.Fatal("a refused write was stored")
			}
		})
	}
	// A version already stored is not checked again: lowering the value
	// limit does not make a key unwritable.
	e2cfg := cfg
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2cfg.MaxValueBytes = 8
	e2 := openT(t, e2cfg)
	if e2.Get([]byte("v-at-limit")) == nil {
		t.Fatal("value lost on reopen")
	}
	_, err := e2.Apply(t.Context(), []byte("v-at-limit"), set([]byte("small")))
	if err != nil {
		t.Fatalf("small sibling beside an old large one: %v", err)
	}
}
