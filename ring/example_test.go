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
