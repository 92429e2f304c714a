package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// crash abandons an open engine as kill -9 would: the WAL file and the
// directory lock are released, nothing else runs.
func crash(t testing.TB, e *Engine) {
	t.Helper()
	abandon(e)
}

// abandon is crash without a testing.TB (for rapid's T).
func abandon(e *Engine) {
	e.closeMu.Lock()
	e.closed = true
	e.closeMu.Unlock()
	e.bg.Wait()
	_ = e.log.Close()
	_ = e.lock.Close()
}

func TestActorKeptAfterCleanCloseRenewedAfterCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)

	e := openT(t, cfg)
	first := e.Incarnation()
	if first != e.id.Incarnation {
		t.Fatalf("a new directory mints under its incarnation %q, got %q", e.id.Incarnation, first)
	}
	put(t, e, "k", "v1")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openT(t, cfg)
	if got := e.Incarnation(); got != first {
		t.Fatalf("after a clean close the actor changed: %q -> %q", first, got)
	}
	put(t, e, "k", "v2")
	crash(t, e)

	e = openT(t, cfg)
	second := e.Incarnation()
	if second == first || len(second) != incarnationLen {
		t.Fatalf("after a crash the actor must be renewed, got %q (was %q)", second, first)
	}
	if e.id.Incarnation != first {
		t.Fatalf("the directory's identity must not change: %q -> %q", first, e.id.Incarnation)
	}
	if s := e.Get([]byte("k")); len(s) != 1 || string(s[0].Value) != "v2" {
		t.Fatalf("acknowledged write lost across the crash: %+v", s)
	}
	// A crash right after open (before any write) renews it again; a clean
	// close keeps the renewed one.
	crash(t, e)
	e = openT(t, cfg)
	third := e.Incarnation()
	if third == second {
		t.Fatalf("second crash kept actor %q", third)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openT(t, cfg)
	if got := e.Incarnation(); got != third {
		t.Fatalf("clean close after a crash: actor %q -> %q", third, got)
	}
}

// A directory that gets a new identity (its data was wiped) mints under the
// new incarnation even if the ACTOR and CLEAN files of the wiped data
// survived: that
// actor's dots exist on other nodes, and with no history left here the
// counters would start over and re-mint them.
func TestNewIdentityIgnoresStaleActorFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	e := openT(t, cfg)
	put(t, e, "k", "v1")
	crash(t, e)
	e = openT(t, cfg) // renews the actor into ACTOR
	stale := e.Incarnation()
	put(t, e, "k", "v2")
	if err := e.Close(); err != nil { // writes CLEAN
		t.Fatal(err)
	}

	// Wipe everything but ACTOR and CLEAN.
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() != actorFile && n.Name() != cleanFile {
			if err := os.RemoveAll(filepath.Join(dir, n.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	e = openT(t, cfg)
	defer e.Close()
	if e.Incarnation() == stale || e.Incarnation() != e.id.Incarnation {
		t.Fatalf("new directory identity %q mints under %q (stale actor %q)", e.id.Incarnation, e.Incarnation(), stale)
	}
}
