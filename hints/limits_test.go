package hints

import (
	"errors"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/storage"
)

// TestStoreHintLimits: a hint is data entering this node from a peer, so
// the key and value limits hold for it as for the store: a refused hint is
// ErrBadHint wrapping storage.ErrTooLarge, and nothing is kept.
func TestStoreHintLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxKeyBytes, cfg.MaxValueBytes = 16, 64
	q := openQueue(t, cfg)
	for _, c := range []struct {
		name, key, value string
		ok               bool
	}{
		{"at limits", strings.Repeat("k", 16), strings.Repeat("v", 64), true},
		{"key too long", strings.Repeat("k", 17), "v", false},
		{"value too large", "k2", strings.Repeat("v", 65), false},
	} {
		err := q.StoreHint(t.Context(), "n2", []byte(c.key), mint(nil, "a", c.value))
		if c.ok != (err == nil) || (!c.ok && (!errors.Is(err, ErrBadHint) || !errors.Is(err, storage.ErrTooLarge))) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	if p := q.PendingFor("n2"); p.Hints != 1 {
		t.Fatalf("%d hints pending, want only the one within the limits", p.Hints)
	}
}
