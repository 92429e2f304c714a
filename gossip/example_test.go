package gossip_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ringkv/ringkv/gossip"
)

// A single node with no seeds starts a new cluster (Bootstrap: the first
// plan has it alone) and is its only ring member. A second node would list
// the first one's LocalAddr in Seeds, without Bootstrap, and learn the plan
// from it.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "gossip-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := gossip.LocalConfig()
	cfg.Name = "n1"
	cfg.Dir = dir
	cfg.Bootstrap = true
	cfg.Meta = gossip.Meta{RPC: "127.0.0.1:9000", HTTP: "127.0.0.1:8080", RESP: "127.0.0.1:6379", Proto: 1}
	g, err := gossip.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Shutdown()
	if err := g.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	<-g.Joined()

	meta, _ := g.Meta("n1")
	fmt.Println(g.RingMembers(), g.Alive("n1"), meta.RPC)
	fmt.Println(g.Plan().Epoch, g.Plan().Members, g.Plan().Stable())
	fmt.Println(g.Remove(context.Background(), "n1"))
	// Output:
	// [n1] true 127.0.0.1:9000
	// 1 [n1] true
	// gossip: a node cannot remove itself (use leave): "n1"
}
