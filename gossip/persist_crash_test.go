package gossip

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/vfs/vfstest"
	"github.com/ringkv/ringkv/ring"
)

// A crash at any point of saveState, with unsynced bytes lost or torn,
// leaves a file that loads as the old map and plan or the new ones:
// never an error, never a mix.
func TestSaveStateCrashPoints(t *testing.T) {
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/data"); err != nil {
		t.Fatal(err)
	}
	oldMap := Map{"n1": {StatusJoined, 2, "127.0.0.1:1", ""}}
	oldPlan := ring.NewPlan([]string{"n1"}, 3)
	if err := saveState(c, "/data", "n1", oldMap, oldPlan); err != nil {
		t.Fatal(err)
	}
	newMap := Merge(oldMap, Map{"n2": {StatusJoined, 4, "127.0.0.1:2", ""}})
	newPlan := oldPlan.MoveTo([]string{"n1", "n2"}, 5)
	crashes, err := vfstest.CrashPoints(c, rand.New(rand.NewPCG(7, 7)), func(c *vfstest.CrashFS) error {
		return saveState(c, "/data", "n1", newMap, newPlan)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, cc := range crashes {
		m, p, err := loadState(cc, "/data", "n1")
		if err != nil {
			t.Errorf("crash %d: load: %v", i, err)
			continue
		}
		isOld := cmp.Equal(m, oldMap) && cmp.Equal(p, oldPlan)
		isNew := cmp.Equal(m, newMap) && cmp.Equal(p, newPlan)
		if !isOld && !isNew {
			t.Errorf("crash %d: loaded %v %+v, neither the old state nor the new", i, m, p)
		}
		if i >= len(crashes)-2 && !isNew {
			t.Errorf("crash %d, after saveState returned: the old state came back", i)
		}
		if names, _ := cc.List("/data"); len(names) != 1 {
			t.Errorf("crash %d: after load the directory holds %q", i, names)
		}
	}
}
