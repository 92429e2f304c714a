//go:build !ringkvbroken

package replica_test

import (
	"testing"

	"github.com/ringkv/ringkv/replica"
)

// TestRemoteStoreIsApplied: a write acknowledged at W=all is in the store
// of every replica, not only its coordinator's. This is what the
// ringkvbroken build (remote_apply_broken.go) breaks on purpose, for the
// chaos checker's self-test; TestStaleCoordinator, TestNotReplicaRefuses,
// TestDropConcurrentStores and TestDeleteWithoutContextRemovesWhatAReadReturns
// fail under that tag too.
func TestRemoteStoreIsApplied(t *testing.T) {
	if replica.BrokenBuild {
		t.Fatal("BrokenBuild is true in a build without the ringkvbroken tag")
	}
	c := newCluster(t, 3, 3)
	key := c.keyOn("remote", "n1")
	res := c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})
	dot := dotOf(t, res, "v")
	for _, n := range c.replicasOf(key) {
		if got := c.stores[n].Get(key); !got.Context().Covers(dot) {
			t.Errorf("%s holds %v after a W=all write through n1", n, values(got))
		}
	}
}
