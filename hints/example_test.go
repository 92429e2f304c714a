package hints_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/vclock"
)

// A stand-in keeps a write for node "b" while b is down, and delivers it
// when gossip reports b back.
func ExampleQueue() {
	dir, _ := os.MkdirTemp("", "hints-example")
	defer os.RemoveAll(dir)
	delivered := make(chan string, 1)
	cfg := hints.DefaultConfig()
	cfg.Dir = dir
	cfg.Deliverer = hints.DelivererFunc(func(ctx context.Context, target string, batch []hints.Hint) error {
		delivered <- fmt.Sprintf("%s <- %s=%s", target, batch[0].Key, batch[0].Siblings[0].Value)
		return nil
	})
	q, err := hints.Open(cfg)
	if err != nil {
		panic(err)
	}
	defer q.Close()
	q.SetAlive("b", false)
	if err := q.Start(context.Background()); err != nil {
		panic(err)
	}
	_, set := vclock.Mint(nil, "inc-a", vclock.Write{Blind: true, Value: []byte("v1")})
	if err := q.StoreHint(context.Background(), "b", []byte("k"), set); err != nil {
		panic(err)
	}
	fmt.Println("pending for b:", q.PendingFor("b").Hints)
	q.SetAlive("b", true)
	fmt.Println(<-delivered)
	// Output:
	// pending for b: 1
	// b <- k=v1
}
