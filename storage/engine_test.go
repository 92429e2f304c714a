package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

func TestEngineBasicAndReopen(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Fsync = policy
			cfg.SegmentBytes = 4096 // force rolls
			e := openT(t, cfg)
			inc := e.Incarnation()
			if len(inc) != incarnationLen {
				t.Fatalf("incarnation %q", inc)
			}
			for i := range 200 {
				put(t, e, fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i))
			}
			put(t, e, "k007", "again")
			del(t, e, "k008", time.Now())
			if v, ok := valueOf(e, "k007"); !ok || v != "again" {
				t.Fatalf("k007 = %q %v", v, ok)
			}
			if e.Get([]byte("absent")) != nil {
				t.Fatal("absent key has a value")
			}
			st := e.Stats()
			if st.Keys != 200 || st.Segments < 2 {
				t.Fatalf("stats %+v", st)
			}
			var sum int64
			for _, ps := range e.PartitionStats() {
				sum += ps.Keys
			}
			if sum != 200 {
				t.Fatalf("partition stats sum %d", sum)
			}
			before := dump(e)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := e.Apply(t.Context(), []byte("x"), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Apply after Close: %v", err)
			}
			e = openT(t, cfg)
			defer e.Close()
			if e.Incarnation() != inc {
				t.Fatalf("incarnation changed %q -> %q", inc, e.Incarnation())
			}
			if err := sameContents(before, dump(e)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWrongNodeAndLock(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	e := openT(t, cfg)
	if _, err := Open(cfg); err == nil {
		t.Fatal("second Open of a locked directory succeeded")
	}
	e.Close()
	cfg.NodeID = "n2"
	if _, err := Open(cfg); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("Open as another node: %v", err)
	}
}

func TestFreshDirectoryNewIncarnation(t *testing.T) {
	a := openT(t, testConfig(t, t.TempDir()))
	b := openT(t, testConfig(t, t.TempDir()))
	defer a.Close()
	defer b.Close()
	if a.Incarnation() == b.Incarnation() {
		t.Fatalf("two directories share incarnation %q", a.Incarnation())
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(t, "/tmp/x")
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"no node", func(c *Config) { c.NodeID = "" }},
		{"no partitions", func(c *Config) { c.Partitions = 0 }},
		{"no partitioner", func(c *Config) { c.Partitioner = nil }},
		{"bad policy", func(c *Config) { c.Fsync = "sometimes" }},
		{"tiny segments", func(c *Config) { c.SegmentBytes = 100 }},
		{"negative gc", func(c *Config) { c.TombstoneGC = -time.Second }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestApplyMergesAndValidates(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	ctx := t.Context()
	_, a := vclock.Mint(nil, "x", vclock.Write{Value: []byte("a"), WallTime: 1})
	_, b := vclock.Mint(nil, "y", vclock.Write{Value: []byte("b"), WallTime: 2})
	if _, err := e.Apply(ctx, []byte("k"), a); err != nil {
		t.Fatal(err)
	}
	got, err := e.Apply(ctx, []byte("k"), b)
	if err != nil || len(got) != 2 {
		t.Fatalf("Apply concurrent = %v, %v; want two siblings", got, err)
	}
	again, err := e.Apply(ctx, []byte("k"), a) // idempotent
	if err != nil || !again.Equal(got) {
		t.Fatalf("re-Apply = %v, %v", again, err)
	}
	bad := vclock.Siblings{{Dot: vclock.Dot{Actor: "", Counter: 1}}}
	if _, err := e.Apply(ctx, []byte("k"), bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply of invalid set: %v", err)
	}
	if _, err := e.Apply(ctx, nil, a); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply with empty key: %v", err)
	}
	boom := errors.New("boom")
	if _, err := e.Update(ctx, []byte("k"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Update error: %v", err)
	}
	if !e.Get([]byte("k")).Equal(got) {
		t.Fatal("failed Update changed the key")
	}
}

// Two concurrent Updates that mint through the same coordinator must see
// each other: every minted dot is distinct and all survive as siblings.
func TestConcurrentUpdatesSeeEachOther(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	const writers, each = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := e.Update(t.Context(), []byte("hot"), func(cur vclock.Siblings) (vclock.Siblings, error) {
					_, next := vclock.Mint(cur, e.Incarnation(), vclock.Write{Value: []byte(fmt.Sprint(w, i))})
					return next, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(e.Get([]byte("hot"))); got != writers*each {
		t.Fatalf("%d siblings, want %d (an Update lost another's write)", got, writers*each)
	}
}

func TestUpdateDeleteAndRangeStop(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions, cfg.Partitioner = 1, func([]byte) int { return 0 }
	e := openT(t, cfg)
	for i := range 10 {
		put(t, e, fmt.Sprint("k", i), "v")
	}
	if _, err := e.Update(t.Context(), []byte("k3"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	seen := 0
	e.Range(0, func([]byte, vclock.Siblings) bool { seen++; return seen < 4 })
	if seen != 4 {
		t.Fatalf("Range did not stop: %d calls", seen)
	}
	if e.Stats().Keys != 9 || e.Get([]byte("k3")) != nil {
		t.Fatalf("delete by Update: stats %+v", e.Stats())
	}
	e.Close()
	e = openT(t, cfg)
	defer e.Close()
	if e.Stats().Keys != 9 || e.Get([]byte("k3")) != nil {
		t.Fatal("delete by Update did not survive reopen")
	}
}

func TestBadPartitioner(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partitioner = func([]byte) int { return 99 }
	e := openT(t, cfg)
	defer e.Close()
	_, s := vclock.Mint(nil, "x", vclock.Write{Value: []byte("a")})
	if _, err := e.Apply(t.Context(), []byte("k"), s); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply with bad partition: %v", err)
	}
	if e.Get([]byte("k")) != nil {
		t.Fatal("Get with bad partition returned data")
	}
}

func TestContextCanceledBeforeWrite(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, s := vclock.Mint(nil, "x", vclock.Write{Value: []byte("a")})
	if _, err := e.Apply(ctx, []byte("k"), s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with canceled ctx: %v", err)
	}
	if e.Get([]byte("k")) != nil {
		t.Fatal("canceled Apply wrote")
	}
}

func TestScanPagesInKeyOrder(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions, cfg.Partitioner = 1, fnvPartitioner(1)
	e := openT(t, cfg)
	var want []string
	for i := range 50 {
		k := fmt.Sprintf("k%03d", i)
		put(t, e, k, "v")
		want = append(want, k)
	}
	var got []string
	var after []byte
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("scan does not end")
		}
		keys, sets, more := e.Scan(0, after, 7, 1<<20)
		if len(keys) != len(sets) || len(keys) > 7 {
			t.Fatalf("page of %d keys and %d sets, limit 7", len(keys), len(sets))
		}
		for _, k := range keys {
			got = append(got, string(k))
		}
		if !more {
			break
		}
		after = keys[len(keys)-1]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scan gave %v, want %v", got, want)
	}
}

func TestScanStopsAtMaxBytesButReturnsOne(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions, cfg.Partitioner = 1, fnvPartitioner(1)
	e := openT(t, cfg)
	for _, k := range []string{"a", "b", "c"} {
		put(t, e, k, "v")
	}
	keys, sets, more := e.Scan(0, nil, 10, 1)
	if len(keys) != 1 || len(sets) != 1 || !more || string(keys[0]) != "a" {
		t.Fatalf("Scan(maxBytes=1) = %q, more=%v; want one entry and more", keys, more)
	}
	if keys, _, more := e.Scan(0, []byte("c"), 10, 1<<20); len(keys) != 0 || more {
		t.Fatalf("Scan after the last key = %q, more=%v", keys, more)
	}
}
