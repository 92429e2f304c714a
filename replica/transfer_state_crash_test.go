package replica

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// A crash at any point of saveTransfers, with unsynced bytes lost or
// torn, leaves a file that loads as the old progress or the new: a
// partition is never reported done and then forgotten.
func TestSaveTransfersCrashPoints(t *testing.T) {
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/data"); err != nil {
		t.Fatal(err)
	}
	old := transferState{Epoch: 3, PlanHash: 42, Done: []int32{1, 5}}
	if err := saveTransfers(c, "/data", "n4", old); err != nil {
		t.Fatal(err)
	}
	next := transferState{Epoch: 3, PlanHash: 42, Done: []int32{1, 5, 9, 200}}
	crashes, err := vfstest.CrashPoints(c, rand.New(rand.NewPCG(3, 3)), func(c *vfstest.CrashFS) error {
		return saveTransfers(c, "/data", "n4", next)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, cc := range crashes {
		st, err := loadTransfers(cc, "/data", "n4")
		if err != nil {
			t.Errorf("crash %d: load: %v", i, err)
			continue
		}
		if !cmp.Equal(st, old) && !cmp.Equal(st, next) {
			t.Errorf("crash %d: loaded %+v, neither the old progress nor the new", i, st)
		}
		if i >= len(crashes)-2 && !cmp.Equal(st, next) {
			t.Errorf("crash %d, after saveTransfers returned: loaded %+v, want the new progress", i, st)
		}
	}
}
