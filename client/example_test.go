package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ringkv/ringkv/client"
)

// A read-modify-write: read a key, change its value, and write it back
// with the context the read returned, so that the write supersedes exactly
// what was read and a concurrent writer's value would be kept as a sibling
// instead of being lost.
func Example() {
	addr, stop, err := startNode() // a real node in this process
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	c, err := client.New(client.Config{Nodes: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.Put(ctx, "greeting", []byte("hello"), client.W(client.All)); err != nil {
		log.Fatal(err)
	}
	res, err := c.Get(ctx, "greeting", client.R(client.Majority))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %q\n", res.Value)

	if _, err := c.Put(ctx, "greeting", append(res.Value, " world"...), client.WithCausal(res.Context)); err != nil {
		log.Fatal(err)
	}
	res, err = c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %q, siblings: %d\n", res.Value, len(res.Siblings))

	if _, err := c.Delete(ctx, "greeting"); err != nil {
		log.Fatal(err)
	}
	res, err = c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found after delete:", res.Found)
	// Output:
	// read "hello"
	// read "hello world", siblings: 0
	// found after delete: false
}

// Two writers that both saw the same version write concurrently: both
// values are kept as siblings, and a write with the context of a read that
// showed them both resolves them.
func ExampleClient_Put_siblings() {
	addr, stop, err := startNode()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	c, err := client.New(client.Config{Nodes: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	first, err := c.Put(ctx, "cart", []byte("apple"))
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range []string{"apple,pear", "apple,plum"} {
		if _, err := c.Put(ctx, "cart", []byte(v), client.WithCausal(first.Context)); err != nil {
			log.Fatal(err)
		}
	}
	res, err := c.Get(ctx, "cart")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("siblings:", len(res.Siblings))

	if _, err := c.Put(ctx, "cart", []byte("apple,pear,plum"), client.WithCausal(res.Context)); err != nil {
		log.Fatal(err)
	}
	res, err = c.Get(ctx, "cart")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q, siblings: %d\n", res.Value, len(res.Siblings))
	// Output:
	// siblings: 2
	// "apple,pear,plum", siblings: 0
}
