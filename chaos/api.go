package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The admin answers the harness reads (docs/http-api.md). The package
// imports no ringkv package but vclock, so it keeps its own copies of the
// few fields it needs; unknown fields are ignored.

// memberJSON is one entry of GET /v1/members.
type memberJSON struct {
	Name     string `json:"name"`
	HTTP     string `json:"http"`
	Liveness string `json:"liveness"`
	Status   string `json:"status"`
}

// planJSON is the "plan" of GET /v1/stats. Target is empty while no
// membership change is in progress.
type planJSON struct {
	Epoch   uint64   `json:"epoch"`
	Members []string `json:"members"`
	Target  []string `json:"target"`
}

// transferJSON is the part of "transfer" of GET /v1/stats that says
// whether the node still copies partitions.
type transferJSON struct {
	Epoch    uint64 `json:"epoch"`
	Pending  int    `json:"pending"`
	InFlight int    `json:"in_flight"`
}

// aaeStatsJSON is the "aae" object of GET /v1/stats (absent when
// anti-entropy is off).
type aaeStatsJSON struct {
	Partitions   int    `json:"partitions"`
	LastFullPass string `json:"last_full_pass"`
}

// hintsJSON is the "hints" object of GET /v1/stats.
type hintsJSON struct {
	Pending int64 `json:"pending"`
}

// statsJSON is GET /v1/stats: one node about itself.
type statsJSON struct {
	Node     string        `json:"node"`
	Keys     int64         `json:"keys"`
	Plan     planJSON      `json:"plan"`
	Transfer transferJSON  `json:"transfer"`
	AAE      *aaeStatsJSON `json:"aae"`
	Hints    *hintsJSON    `json:"hints"`
}

// aaePartitionJSON is one entry of GET /v1/aae. LastFull is when the last
// round in which every exchange of the partition completed began (RFC
// 3339; "" for never).
type aaePartitionJSON struct {
	Partition int    `json:"partition"`
	LastFull  string `json:"last_full"`
	InSync    bool   `json:"in_sync"`
	LastError string `json:"last_error"`
}

// Bounds on what the harness and the workload read from a node: answers
// (the workload's values are short, so even a sibling list at the server's
// cap fits in maxAnswerBytes) are small except
// GET /v1/aae, one entry per partition the node replicates (cluster.partitions
// is at most a few tens of thousands).
const (
	maxAnswerBytes = 4 << 20
	maxAAEBytes    = 64 << 20
	// requestTimeout bounds one admin request: a frozen node never
	// answers, and the caller's ctx may be long.
	requestTimeout = 5 * time.Second
)

// adminClient is the HTTP client of every admin request; each request is
// also bounded by its ctx.
var adminClient = &http.Client{Timeout: requestTimeout}

// getJSON reads GET http://addr+path into out, at most limit bytes.
func getJSON(ctx context.Context, addr, path string, limit int64, out any) error {
	_, err := doJSON(ctx, http.MethodGet, addr, path, limit, out)
	return err
}

// doJSON sends method to http://addr+path and decodes a 200 answer of at
// most limit bytes into out (nil: the body is read and dropped). Any other
// status is an error quoting the start of the body.
func doJSON(ctx context.Context, method, addr, path string, limit int64, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: reading the answer: %w", method, path, addr, err)
	}
	if int64(len(body)) > limit {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: answer longer than %d bytes", method, path, addr, limit)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: %d %s", method, path, addr, resp.StatusCode, quote(body, 200))
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	return resp.StatusCode, nil
}

// readyz reports whether the node at addr answers GET /readyz with 200.
func readyz(ctx context.Context, addr string) bool {
	code, err := doJSON(ctx, http.MethodGet, addr, "/readyz", 4<<10, nil)
	return err == nil && code == http.StatusOK
}

// quote shows at most n bytes of b, trimmed, for an error message.
func quote(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// errStopped is returned by operations on a cluster after Stop.
var errStopped = errors.New("chaos: cluster stopped")
