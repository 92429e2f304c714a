package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/fnv1a"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// fnvPartitioner spreads keys over n partitions by 32-bit FNV-1a, with
// no allocation per call (hash/fnv's hasher would allocate).
func fnvPartitioner(n int) func([]byte) int {
	return func(k []byte) int { return int(fnv1a.Sum32(k) % uint32(n)) }
}

func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.NodeID = "n1"
	cfg.Partitions = 8
	cfg.Partitioner = fnvPartitioner(8)
	cfg.Logger = testkit.Logger(t)
	return cfg
}

func openT(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

// put mints a blind write of value through e, as a coordinator would.
func put(t testing.TB, e *Engine, key, value string) vclock.Siblings {
	t.Helper()
	s, err := e.Update(context.Background(), []byte(key), func(cur vclock.Siblings) (vclock.Siblings, error) {
		_, next := vclock.Mint(cur, e.Incarnation(), vclock.Write{Blind: true, Value: []byte(value), WallTime: time.Now().UnixNano()})
		return next, nil
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return s
}

// del mints a blind tombstone at wall time at.
func del(t testing.TB, e *Engine, key string, at time.Time) {
	t.Helper()
	_, err := e.Update(context.Background(), []byte(key), func(cur vclock.Siblings) (vclock.Siblings, error) {
		_, next := vclock.Mint(cur, e.Incarnation(), vclock.Write{Blind: true, Tombstone: true, WallTime: at.UnixNano()})
		return next, nil
	})
	if err != nil {
		t.Fatalf("del %s: %v", key, err)
	}
}

// valueOf returns the single live value of key, or "" with ok false.
func valueOf(e *Engine, key string) (string, bool) {
	s := e.Get([]byte(key)).Live()
	if len(s) != 1 {
		return "", false
	}
	return string(s[0].Value), true
}

// dump returns every key and set of e, for comparing engines.
func dump(e *Engine) map[string]vclock.Siblings {
	out := make(map[string]vclock.Siblings)
	for p := range e.shards {
		e.Range(p, func(k []byte, s vclock.Siblings) bool {
			out[string(k)] = s
			return true
		})
	}
	return out
}

func sameContents(a, b map[string]vclock.Siblings) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d keys vs %d keys", len(a), len(b))
	}
	for k, s := range a {
		if !s.Equal(b[k]) {
			return fmt.Errorf("key %q: %v vs %v", k, s, b[k])
		}
	}
	return nil
}

// fakeClock is testkit's settable clock, for Config.Now.
type fakeClock = testkit.Clock

func newFakeClock() *fakeClock {
	return testkit.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
}

// recvOf returns key's receipt time in e's index (0 if absent).
func recvOf(e *Engine, key string) int64 {
	sh, err := e.shardOf([]byte(key))
	if err != nil {
		return 0
	}
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[key].recv()
}
