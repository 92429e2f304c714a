package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// finalReaders is how many keys FinalReads reads at once.
const finalReaders = 8

// finalTimeout bounds one final read; a read that times out is retried.
const finalTimeout = 5 * time.Second

// FinalReads reads every key with R=all from the given nodes (round
// robin), retrying a key on error until ctx is done. A key still unread
// then has Err set. A nil client is http.DefaultClient. The result is in
// the order of keys.
func FinalReads(ctx context.Context, client *http.Client, nodes []string, keys []string) []FinalRead {
	if client == nil {
		client = http.DefaultClient
	}
	out := make([]FinalRead, len(keys))
	if len(nodes) == 0 {
		for i, k := range keys {
			out[i] = FinalRead{Key: k, Err: "chaos: no node to read from"}
		}
		return out
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(finalReaders, len(keys)) {
		wg.Go(func() {
			for i := range next {
				out[i] = finalRead(ctx, client, nodes, i, keys[i])
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// finalRead reads one key, starting at node i (mod len(nodes)) and moving
// to the next node on each failure.
func finalRead(ctx context.Context, client *http.Client, nodes []string, i int, key string) FinalRead {
	var last error
	for try := 0; ; try++ {
		if ctx.Err() != nil {
			if last == nil {
				last = ctx.Err()
			}
			return FinalRead{Key: key, Err: fmt.Sprintf("after %d tries: %v", try, last)}
		}
		node := nodes[(i+try)%len(nodes)]
		u := "http://" + node + "/v1/kv/" + url.PathEscape(key) + "?r=all"
		rctx, cancel := context.WithTimeout(ctx, finalTimeout)
		ans := doRequest(rctx, client, http.MethodGet, u, nil, "")
		cancel()
		switch {
		case ans.err != nil:
			last = fmt.Errorf("%s: %w", node, ans.err)
		case ans.status == http.StatusOK, ans.status == http.StatusMultipleChoices, ans.status == http.StatusNotFound:
			vals, err := answerValues(ans)
			if err == nil {
				return FinalRead{Key: key, Values: vals}
			}
			last = fmt.Errorf("%s: %w", node, err)
		default:
			last = fmt.Errorf("%s: %d %.200s", node, ans.status, ans.body)
		}
		if !pause(ctx, min(time.Duration(try+1)*50*time.Millisecond, time.Second)) {
			continue // reports ctx's end with the last error above
		}
	}
}
