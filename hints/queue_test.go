package hints

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "Dir is required"},
		{"negative window", func(c *Config) { c.Window = -1 }, "Window"},
		{"default grace", func(c *Config) { c.Grace = 0 }, ""},
		{"negative grace", func(c *Config) { c.Grace = -time.Hour }, "Grace"},
		{"window past grace", func(c *Config) { c.Window, c.Grace = 2*time.Hour, time.Hour }, "need Window <= Grace"},
		{"window past default grace", func(c *Config) { c.Window = 241 * time.Hour }, "need Window <= Grace"},
		{"window equal grace", func(c *Config) { c.Window, c.Grace = time.Hour, time.Hour }, ""},
		{"negative cap", func(c *Config) { c.MaxBytesPerTarget = -1 }, "MaxBytesPerTarget"},
		{"negative rate", func(c *Config) { c.DeliveryRate = -5 }, "DeliveryRate"},
		{"negative retry", func(c *Config) { c.RetryInterval = -time.Second }, "RetryInterval"},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, "BatchSize"},
		{"bad fsync", func(c *Config) { c.Fsync = "sometimes" }, "Fsync"},
		{"tiny segment", func(c *Config) { c.SegmentBytes = 10 }, "SegmentBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Dir = t.TempDir()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestStoreHintRejectsBadInput(t *testing.T) {
	q := openQueue(t, testConfig(t, t.TempDir()))
	s := mint(nil, "a", "v")
	for name, call := range map[string]func() error{
		"empty target": func() error { return q.StoreHint(t.Context(), "", []byte("k"), s) },
		"empty key":    func() error { return q.StoreHint(t.Context(), "b", nil, s) },
		"empty set":    func() error { return q.StoreHint(t.Context(), "b", []byte("k"), nil) },
		"bad set": func() error {
			return q.StoreHint(t.Context(), "b", []byte("k"), vclock.Siblings{{Dot: vclock.Dot{Actor: "a"}}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, ErrBadHint) {
				t.Fatalf("StoreHint = %v, want ErrBadHint", err)
			}
		})
	}
	if got := q.Stats().PendingHints; got != 0 {
		t.Fatalf("pending = %d after bad input", got)
	}
}

// 10,000 writes to one key are one pending hint holding the latest set.
func TestStoreHintMergesPerKey(t *testing.T) {
	q := openQueue(t, testConfig(t, t.TempDir()))
	var s vclock.Siblings
	for i := range 10000 {
		s = mint(s, "a", fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte("hot"), s); err != nil {
			t.Fatalf("StoreHint %d: %v", i, err)
		}
	}
	if err := q.StoreHint(t.Context(), "b", []byte("cold"), mint(nil, "a", "c")); err != nil {
		t.Fatal(err)
	}
	p := q.PendingFor("b")
	if p.Hints != 2 {
		t.Fatalf("pending hints = %d, want 2", p.Hints)
	}
	st := q.Stats()
	if st.Stored != 10001 || st.PendingHints != 2 || st.PendingBytes != p.Bytes {
		t.Fatalf("stats = %+v, pending %+v", st, p)
	}
	if p.Oldest.IsZero() {
		t.Fatal("Oldest not set")
	}
	// The same set again stores nothing new.
	bytes := p.Bytes
	if err := q.StoreHint(t.Context(), "b", []byte("hot"), s); err != nil {
		t.Fatal(err)
	}
	if got := q.PendingFor("b").Bytes; got != bytes {
		t.Fatalf("bytes %d -> %d after a repeated hint", bytes, got)
	}
}

// Hints survive close and reopen (and a crash: the log is replayed the
// same way; the real-process SIGKILL case is in e2e).
func TestHintsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Fsync = storage.FsyncAlways
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]vclock.Siblings{}
	for i := range 200 {
		k := fmt.Sprintf("k%d", i%50)
		target := []string{"node-b", "127.0.0.1:7003"}[i%2]
		s := mint(want[target+"/"+k], "a", fmt.Sprint(i))
		want[target+"/"+k] = s
		if err := q.StoreHint(t.Context(), target, []byte(k), s); err != nil {
			t.Fatal(err)
		}
	}
	before := q.Pending()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, cfg)
	after := q2.Pending()
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("targets before %d after %d", len(before), len(after))
	}
	for i := range after {
		b, a := before[i], after[i]
		if a.Target != b.Target || a.Hints != b.Hints || a.Bytes != b.Bytes || !a.Oldest.Equal(b.Oldest) {
			t.Fatalf("target %d: before %+v, after %+v", i, b, a)
		}
	}
	for tk, s := range want {
		target, key, _ := strings.Cut(tk, "/")
		tg := q2.targets[target]
		if got := tg.index[key].sibs; !got.Equal(s) {
			t.Fatalf("%s: recovered %v, want %v", tk, got, s)
		}
	}
}

func TestOpenRefusesCorruptLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := q.StoreHint(t.Context(), "b", []byte(fmt.Sprint(i)), mint(nil, "a", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "b", "0000000000000001.wal")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[20] ^= 0xff // inside the first record's payload, not the tail
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestWindowDropsAndCounts(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	cfg := testConfig(t, t.TempDir())
	cfg.Window = time.Hour
	cfg.Clock = clk
	q := openQueue(t, cfg)
	s := mint(nil, "a", "v")
	q.SetAlive("b", false)
	clk.Advance(59 * time.Minute)
	if err := q.StoreHint(t.Context(), "b", []byte("in"), s); err != nil {
		t.Fatalf("inside window: %v", err)
	}
	q.SetAlive("b", false) // a repeated down report does not restart the window
	clk.Advance(2 * time.Minute)
	if err := q.StoreHint(t.Context(), "b", []byte("out"), s); !errors.Is(err, ErrHintWindow) {
		t.Fatalf("past window: %v, want ErrHintWindow", err)
	}
	if p := q.PendingFor("b"); p.Hints != 1 || !p.Down {
		t.Fatalf("pending = %+v, want 1 hint, down", p)
	}
	if st := q.Stats(); st.DroppedWindow != 1 || st.Stored != 1 {
		t.Fatalf("stats = %+v", st)
	}
	// Other targets are unaffected; a target back up gets hints again.
	if err := q.StoreHint(t.Context(), "c", []byte("out"), s); err != nil {
		t.Fatal(err)
	}
	q.SetAlive("b", true)
	if err := q.StoreHint(t.Context(), "b", []byte("out"), s); err != nil {
		t.Fatalf("after coming back: %v", err)
	}
	q.SetAlive("b", false)
	clk.Advance(30 * time.Minute)
	if err := q.StoreHint(t.Context(), "b", []byte("again"), s); err != nil {
		t.Fatalf("new window: %v", err)
	}
}

func TestCapDropsAndCounts(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	probe := openQueue(t, testConfig(t, t.TempDir()))
	if err := probe.StoreHint(t.Context(), "b", []byte("k00"), mint(nil, "a", "0123456789")); err != nil {
		t.Fatal(err)
	}
	one := probe.PendingFor("b").Bytes
	cfg.MaxBytesPerTarget = 3*one + one/2 // room for three such hints
	q := openQueue(t, cfg)
	stored := 0
	for i := range 10 {
		err := q.StoreHint(t.Context(), "b", fmt.Appendf(nil, "k%02d", i), mint(nil, "a", "0123456789"))
		switch {
		case err == nil:
			stored++
		case errors.Is(err, ErrHintCap):
		default:
			t.Fatalf("hint %d: %v", i, err)
		}
	}
	p := q.PendingFor("b")
	st := q.Stats()
	if stored != 3 || p.Hints != 3 || p.Bytes > cfg.MaxBytesPerTarget || st.DroppedCap != 7 || st.Stored != 3 {
		t.Fatalf("stored %d, pending %+v, stats %+v", stored, p, st)
	}
	// Dropped hints are not on disk either: a reopen finds three.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, cfg)
	if got := q2.PendingFor("b").Hints; got != 3 {
		t.Fatalf("after reopen %d hints, want 3", got)
	}
	// Growing a pending key's set past the cap is refused too.
	big := mint(q2.targets["b"].index["k00"].sibs, "a", strings.Repeat("x", int(cfg.MaxBytesPerTarget)))
	if err := q2.StoreHint(t.Context(), "b", []byte("k00"), big); !errors.Is(err, ErrHintCap) {
		t.Fatalf("growing past cap: %v", err)
	}
}
