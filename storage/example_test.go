package storage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// A coordinator mints a new version under the key's lock and stores it.
func ExampleEngine_Update() {
	dir, err := os.MkdirTemp("", "ringkv-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := storage.DefaultConfig()
	cfg.Dir = dir
	cfg.NodeID = "node-a"
	cfg.Partitions = 1
	cfg.Partitioner = func([]byte) int { return 0 }
	e, err := storage.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	for _, v := range []string{"first", "second"} {
		_, err := e.Update(ctx, []byte("greeting"), func(cur vclock.Siblings) (vclock.Siblings, error) {
			_, next := vclock.Mint(cur, e.Incarnation(), vclock.Write{Blind: true, Value: []byte(v), WallTime: time.Now().UnixNano()})
			return next, nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	s := e.Get([]byte("greeting"))
	fmt.Println(len(s), string(s[0].Value), s[0].Dot.Counter)
	// Output: 1 second 2
}
