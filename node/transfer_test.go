package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
)

// writeKeys writes count keys through n with W=2 and returns them with
// their values.
func writeKeys(t *testing.T, n *runningNode, prefix string, count int) map[string]string {
	t.Helper()
	out := make(map[string]string, count)
	for i := range count {
		k, v := fmt.Sprintf("%s-%04d", prefix, i), fmt.Sprintf("value-%s-%d", prefix, i)
		if _, err := n.coord.Put(context.Background(), []byte(k), []byte(v), replica.WriteOptions{W: 2}); err != nil {
			t.Fatalf("put %s through %s: %v", k, n.cfg.Node.Name, err)
		}
		out[k] = v
	}
	return out
}

// settled reports whether every node follows the same stable plan of
// members, and the nodes together hold exactly copies x keys keys (the
// partitions that moved were dropped where they are no longer replicated).
func settled(nodes []*runningNode, members, keys, copies int) bool {
	var total int64
	var epoch uint64
	for i, n := range nodes {
		t := n.place.Load()
		if t == nil || !t.Plan().Stable() || len(t.Plan().Members) != members {
			return false
		}
		if i == 0 {
			epoch = t.Epoch()
		} else if t.Epoch() != epoch {
			return false
		}
		if st := n.puller.Stats(); st.Pending+st.InFlight > 0 {
			return false
		}
		total += n.engine.Stats().Keys
	}
	return total == int64(keys*copies)
}

// checkPlacement checks that every key is held, with its value, by exactly
// the replicas the serving ring names, and reads back with R=2 through via.
func checkPlacement(t *testing.T, nodes []*runningNode, via *runningNode, data map[string]string) {
	t.Helper()
	byName := map[string]*runningNode{}
	for _, n := range nodes {
		byName[n.cfg.Node.Name] = n
	}
	r := via.ring.Load()
	for k, v := range data {
		reps := r.Replicas(r.Partition([]byte(k)))
		for name, n := range byName {
			held := n.engine.Get([]byte(k)).Live()
			want := slices.Contains(reps, name)
			if want && (len(held) != 1 || string(held[0].Value) != v) {
				t.Fatalf("replica %s of %s holds %v, want %q", name, k, held, v)
			}
			if !want && len(held) > 0 {
				t.Fatalf("%s holds %s but is not one of its replicas %v", name, k, reps)
			}
		}
		res, err := via.coord.Get(context.Background(), []byte(k), replica.ReadOptions{R: 2})
		if live := res.Siblings.Live(); err != nil || len(live) != 1 || string(live[0].Value) != v {
			t.Fatalf("get %s with R=2 through %s = %v, %v; want %q", k, via.cfg.Node.Name, live, err, v)
		}
	}
}

// A node that joins gets a full copy of every partition it replicates
// before it serves them, and the nodes that stop replicating a partition
// drop it; then a leave hands the partitions back and the node stops.
func TestJoinCopiesAndLeaveHandsOff(t *testing.T) {
	// A change starts and commits only while every node is seen alive:
	// the LAN profile's slower failure detector keeps a starved test
	// machine (-race, other work on the same cores) from declaring nodes
	// dead again and again.
	cfg := func(name string, seeds ...string) Config {
		c := testConfig(t, name, seeds...)
		c.Gossip.Profile = "lan"
		return c
	}
	n1 := startNode(t, cfg("n1"))
	seed := n1.Addrs().Gossip
	n2 := startNode(t, cfg("n2", seed))
	n3 := startNode(t, cfg("n3", seed))
	three := []*runningNode{n1, n2, n3}
	waitConverged(t, three...)
	data := writeKeys(t, n1, "k", 400)

	n4 := startNode(t, cfg("n4", seed))
	four := append(slices.Clone(three), n4)
	testkit.Eventually(t, 3*time.Minute, "a stable 4-node plan with exactly 3 copies of every key", func() bool {
		return settled(four, 4, len(data), 3)
	})
	if st := n4.puller.Stats(); st.Keys == 0 || st.NewBytes == 0 {
		t.Fatalf("n4 joined without pulling anything: %+v", st)
	}
	checkPlacement(t, four, n4, data)

	// Writes after the join land on the new replicas as well.
	more := writeKeys(t, n4, "after-join", 50)
	for k, v := range more {
		data[k] = v
	}
	testkit.Eventually(t, 3*time.Minute, "the post-join writes on all three replicas", func() bool { return settled(four, 4, len(data), 3) })

	code, _, body := do(t, "POST", httpURL(n4, "/v1/leave"), nil, nil)
	if code != 200 {
		t.Fatalf("POST /v1/leave = %d %s", code, body)
	}
	select {
	case err := <-n4.done:
		if err != nil {
			t.Fatalf("n4 Run after leaving = %v, want nil", err)
		}
		n4.done <- nil // for the cleanup's stop
	case <-time.After(3 * time.Minute):
		t.Fatal("n4 did not stop after leaving")
	}
	testkit.Eventually(t, 3*time.Minute, "a stable 3-node plan with exactly 3 copies of every key", func() bool {
		return settled(three, 3, len(data), 3)
	})
	checkPlacement(t, three, n2, data)
	if st := n4.gossip.Ring()["n4"].Status; st != "left" {
		t.Errorf("n4's own row after the leave = %q, want left", st)
	}
}
