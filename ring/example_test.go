package ring_test

import (
	"fmt"

	"github.com/ringkv/ringkv/ring"
)

func ExampleNew() {
	r, err := ring.New(ring.DefaultConfig(), []string{"node-1", "node-2", "node-3", "node-4", "node-5"})
	if err != nil {
		fmt.Println(err)
		return
	}
	partition, replicas := r.Lookup([]byte("user:42"))
	fmt.Println(partition, replicas, r.Fallbacks(partition))
	// Output: 1875 [node-5 node-2 node-4] [node-1 node-3]
}

func ExampleRing_WhatIfAdd() {
	r, err := ring.New(ring.DefaultConfig(), []string{"node-1", "node-2", "node-3", "node-4", "node-5"})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := r.WhatIfAdd("node-6")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d partitions change, %.1f%% of replica slots move (optimal %.1f%%)\n",
		len(w.ChangedPartitions), 100*w.MovedFraction, 100*w.OptimalFraction)
	// Output: 1104 partitions change, 19.1% of replica slots move (optimal 16.7%)
}

func ExampleRing_Degraded() {
	r, err := ring.New(ring.DefaultConfig(), []string{"node-1", "node-2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Degraded(), len(r.Replicas(0)))
	// Output: true 2
}

func ExampleNewTransition() {
	cfg := ring.DefaultConfig()
	five := []string{"node-1", "node-2", "node-3", "node-4", "node-5"}
	plan := ring.NewPlan(five, 1).MoveTo(append(five, "node-6"), 2)
	t, err := ring.NewTransition(cfg, plan)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := t.Partition([]byte("user:21"))
	fmt.Println("epoch", t.Epoch(), "partition", p)
	fmt.Println("serving", t.Replicas(p), "target", t.Targets(p))
	// node-2 is pending too: bounded loads also shift partitions between
	// existing members. It is no fallback, since it already gets the writes.
	fmt.Println("pending", t.Pending(p), "retiring", t.Retiring(p), "fallbacks", t.Fallbacks(p))
	fmt.Println(len(t.PendingOf("node-6")), "partitions for node-6 to pull;", len(t.Moves()), "moves in all")
	// Output:
	// epoch 2 partition 29
	// serving [node-3 node-5 node-1] target [node-3 node-6 node-2]
	// pending [node-6 node-2] retiring [node-5 node-1] fallbacks [node-4]
	// 1104 partitions for node-6 to pull; 1169 moves in all
}

func ExampleDecide() {
	cfg := ring.DefaultConfig()
	plan := ring.NewPlan([]string{"a", "b", "c"}, 1)
	s := ring.Situation{
		Plan:     plan,
		Desired:  []string{"a", "b", "c", "d"}, // d's row says joined
		Gone:     func(string) bool { return false },
		Alive:    func(string) bool { return true },
		Complete: func(string, int) bool { return true }, // every transfer done
		Now:      2,
	}
	fmt.Println("claimant:", ring.Claimant(s))
	for range 3 {
		next, reason, ok := ring.Decide(cfg, s)
		fmt.Println(reason)
		if !ok {
			break
		}
		s.Plan, s.Now = next, s.Now+1
	}
	// Output:
	// claimant: a
	// start moving to [a b c d]: d joins
	// commit epoch 2: [a b c d] serve
	// stable at epoch 3
}
