package storage

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Stats is read by /metrics, INFO and /v1/stats; it must not wait for a
// snapshot in flight. The snapshot here is held inside its file creation
// by the fault FS until the test has read Stats.
func TestStatsDoNotWaitForSnapshot(t *testing.T) {
	ffs := &faultFS{}
	cfg := testConfig(t, t.TempDir())
	cfg.FS = ffs
	e := openT(t, cfg)
	defer e.Close()
	for i := range 5 {
		put(t, e, "k"+string(rune('a'+i)), "v")
	}
	inside, release := make(chan struct{}), make(chan struct{})
	ffs.setFail(func(op, name string) error {
		if op == "create" && strings.HasSuffix(name, ".snap.tmp") {
			close(inside)
			<-release
		}
		return nil
	})
	snapDone := make(chan error, 1)
	go func() { snapDone <- e.Snapshot(context.Background()) }()
	<-inside

	statsDone := make(chan Stats, 1)
	go func() { statsDone <- e.Stats() }()
	// Stats either returns at once or waits for release, which comes only
	// after this select: the limit decides nothing on a working engine.
	select {
	case st := <-statsDone:
		if st.Keys != 5 || st.Snapshots != 0 {
			t.Errorf("Stats during the snapshot = %+v, want 5 keys and no snapshot yet", st)
		}
	case <-time.After(30 * time.Second):
		t.Error("Stats waited for the running snapshot")
		close(release)
		<-statsDone
		release = nil
	}
	if release != nil {
		close(release)
	}
	if err := <-snapDone; err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	ffs.setFail(nil)
	if st := e.Stats(); st.Snapshots != 1 || st.LastSnapshot.IsZero() {
		t.Errorf("Stats after the snapshot = %+v, want 1 snapshot with its time", st)
	}
}
