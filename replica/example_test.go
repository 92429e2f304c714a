package replica_test

import (
	"context"
	"fmt"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// A three-node cluster in one process: write through one node, read
// through another.
func Example() {
	net := replicatest.NewNetwork(1)
	names := []string{"n1", "n2", "n3"}
	place := replicatest.NewPlacement(names, 3, 16)
	nodes := map[string]*replica.Coordinator{}
	for _, name := range names {
		cfg := replica.DefaultConfig()
		cfg.Self = name
		cfg.Store = replicatest.NewStore("inc-" + name)
		cfg.Transport = net.Transport(name)
		cfg.Placement = func() replica.Placement { return place }
		co, err := replica.New(cfg)
		if err != nil {
			panic(err)
		}
		net.Register(name, co)
		nodes[name] = co
	}
	ctx := context.Background()
	w, err := nodes["n1"].Put(ctx, []byte("greeting"), []byte("hello"), replica.WriteOptions{})
	if err != nil {
		panic(err)
	}
	r, err := nodes["n3"].Get(ctx, []byte("greeting"), replica.ReadOptions{R: replica.QuorumAll})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Replies >= 2, r.Replies, string(r.Siblings.Live()[0].Value))
	for _, co := range nodes {
		_ = co.Close()
	}
	// Output: true 3 hello
}

func ExampleParseQuorum() {
	for _, s := range []string{"one", "quorum", "2", "seven"} {
		q, err := replica.ParseQuorum(s)
		fmt.Println(int(q), err)
	}
	// Output:
	// -1 <nil>
	// -2 <nil>
	// 2 <nil>
	// 0 replica: bad quorum: "seven" is not one, quorum, all or a number
}
