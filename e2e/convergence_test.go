package e2e

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the harness of the anti-entropy tests
// (antientropy_test.go): the anti-entropy and hint counters of GET
// /v1/stats, a bounded concurrent writer, reads that must not find a
// deleted value, and waits on those counters.

// aaeJSON is the "aae" object of GET /v1/stats: this node's anti-entropy
// since it started.
type aaeJSON struct {
	Exchanges        int64 `json:"exchanges"`
	ExchangeFailures int64 `json:"exchange_failures"`
	KeysRepaired     int64 `json:"keys_repaired"`
	BytesRepaired    int64 `json:"bytes_repaired"`
	Partitions       int   `json:"partitions"`
	PartitionsSynced int   `json:"partitions_synced"`
	// LastFullPass is RFC 3339, or "" before the first full pass.
	LastFullPass string `json:"last_full_pass"`
}

// lastFull parses LastFullPass; ok is false before the first full pass.
func (a *aaeJSON) lastFull() (at time.Time, ok bool, err error) {
	if a.LastFullPass == "" {
		return time.Time{}, false, nil
	}
	at, err = time.Parse(time.RFC3339, a.LastFullPass)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last_full_pass %q: %w", a.LastFullPass, err)
	}
	return at, true, nil
}

// hintStatsJSON is the "hints" object of GET /v1/stats: the hints this
// node keeps for others.
type hintStatsJSON struct {
	Pending           int64 `json:"pending"`
	Stored            int64 `json:"stored"`
	Delivered         int64 `json:"delivered"`
	KeptByCoordinator int64 `json:"kept_by_coordinator"`
	DroppedExpired    int64 `json:"dropped_expired"`
}

// convergeStats is the part of GET /v1/stats the anti-entropy tests read.
// AAE and Hints are nil when the binary does not report them.
type convergeStats struct {
	Node     string         `json:"node"`
	Keys     int64          `json:"keys"`
	AAE      *aaeJSON       `json:"aae"`
	Hints    *hintStatsJSON `json:"hints"`
	Transfer transferJSON   `json:"transfer"`
}

// statsOf reads GET /v1/stats of the node at addr.
func statsOf(addr string) (convergeStats, error) {
	var st convergeStats
	err := getJSON(addr, "/v1/stats", &st)
	return st, err
}

// errNoAAE: GET /v1/stats lacks the anti-entropy or hint counters (a
// binary without anti-entropy). Waiting does not help, so the waits below
// fail at once on it.
var errNoAAE = errors.New(`GET /v1/stats has no "aae" or "hints" object`)

// statsWithAAE is statsOf, failing with errNoAAE when the answer lacks the
// anti-entropy or hint counters.
func statsWithAAE(addr string) (convergeStats, error) {
	st, err := statsOf(addr)
	if err != nil {
		return st, err
	}
	if st.AAE == nil || st.Hints == nil {
		return st, fmt.Errorf("%w (%s, node %q)", errNoAAE, addr, st.Node)
	}
	return st, nil
}

// eventuallyAAE is eventually, failing at once when cond's error is
// errNoAAE.
func eventuallyAAE(t *testing.T, deadline time.Time, what string, cond func() error) {
	t.Helper()
	eventually(t, deadline, what, func() error {
		err := cond()
		if errors.Is(err, errNoAAE) {
			t.Fatalf("%s: %v", what, err)
		}
		return err
	})
}

// statsAll reads the stats of every named node (name -> HTTP address),
// requiring the anti-entropy counters.
func statsAll(nodes map[string]string) (map[string]convergeStats, error) {
	out := map[string]convergeStats{}
	for _, name := range sortedNames(nodes) {
		st, err := statsWithAAE(nodes[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = st
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// keyCounts formats each node's "keys" for messages.
func keyCounts(st map[string]convergeStats) string {
	var parts []string
	for _, n := range sortedNames(st) {
		parts = append(parts, fmt.Sprintf("%s=%d", n, st[n].Keys))
	}
	return strings.Join(parts, " ")
}

// aaeSummary formats each node's anti-entropy counters for the log.
func aaeSummary(st map[string]convergeStats) string {
	var parts []string
	for _, n := range sortedNames(st) {
		if a := st[n].AAE; a != nil {
			parts = append(parts, fmt.Sprintf("%s: %+v", n, *a))
		}
	}
	return strings.Join(parts, "; ")
}

// putAll writes keys [0, n) of ks with PUT ?w=w, spread over addrs, from 8
// goroutines, and returns the outcomes: 204 is a success, anything else a
// failure. A 503 (on a loaded machine the failure detector may briefly
// believe a live replica down, and the write then has too few replicas)
// is retried as a client would, at most readRetries times, and counted:
// every key must end up acknowledged.
func putAll(ks keySet, n int, addrs []string, w string) *outcomes {
	o := newOutcomes()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range n {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				addr := addrs[i%len(addrs)]
				u := "http://" + addr + "/v1/kv/" + ks.key(i) + "?w=" + w
				code, body, err := loadDo(http.MethodPut, u, ks.value(i))
				for try := 0; err == nil && code == http.StatusServiceUnavailable && try < readRetries; try++ {
					o.mu.Lock()
					o.retried++
					o.mu.Unlock()
					time.Sleep(100 * time.Millisecond) // a client's backoff, not a synchronisation
					code, body, err = loadDo(http.MethodPut, u, ks.value(i))
				}
				switch {
				case err != nil:
					o.fail("transport errors", fmt.Sprintf("%s via %s: %v", ks.key(i), addr, err))
				case code == http.StatusNoContent:
					o.success()
				default:
					o.fail("refused writes", fmt.Sprintf("%s via %s: %d %.200s", ks.key(i), addr, code, body))
				}
			}
		})
	}
	wg.Wait()
	return o
}

// getKey reads key with R=r through addr and returns the status, body and
// causal context header. A 503 is retried as a client would, at most
// readRetries times.
func getKey(addr, key, r string) (int, []byte, string, error) {
	u := "http://" + addr + "/v1/kv/" + url.PathEscape(key) + "?r=" + r
	for try := 0; ; try++ {
		resp, err := loadClient.Get(u)
		if err != nil {
			return 0, nil, "", err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return 0, nil, "", err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || try >= readRetries {
			return resp.StatusCode, body, resp.Header.Get("X-Ringkv-Context"), nil
		}
		time.Sleep(100 * time.Millisecond) // a client's backoff, not a synchronisation
	}
}

// sendKV sends PUT (value) or DELETE (value nil) of key with ?w=w through
// addr and requires 204.
func sendKV(t *testing.T, addr, key string, value []byte, w string) {
	t.Helper()
	method := http.MethodPut
	if value == nil {
		method = http.MethodDelete
	}
	code, body, err := httpDo(method, "http://"+addr+"/v1/kv/"+url.PathEscape(key)+"?w="+w, value)
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("%s %s w=%s via %s: %d %s %v; want 204", method, key, w, addr, code, body, err)
	}
}

// checkGone reads key through every node with R=one, then with R=all:
// each must answer 404, and above all never the deleted value old. The
// R=one reads come first, before R=all reads repair the replicas.
func checkGone(t *testing.T, nodes map[string]string, key, old string) {
	t.Helper()
	for _, r := range []string{"one", "all"} {
		for _, name := range sortedNames(nodes) {
			code, body, _, err := getKey(nodes[name], key, r)
			switch {
			case err != nil:
				t.Errorf("GET %s r=%s via %s: %v", key, r, name, err)
			case code == http.StatusNotFound:
			case code == http.StatusOK || code == http.StatusMultipleChoices:
				// Only the deleted value was ever written (a 300 lists
				// values base64-encoded): any live version is it.
				t.Errorf("GET %s r=%s via %s: %d %.200q (deleted value %q): the deleted key came back", key, r, name, code, body, old)
			default:
				t.Errorf("GET %s r=%s via %s: %d %.200q; want 404", key, r, name, code, body)
			}
		}
	}
}

// waitEvery waits until check passes for the stats of every named node,
// and returns the last stats read.
func waitEvery(t *testing.T, deadline time.Time, nodes map[string]string, what string, check func(name string, st convergeStats) error) map[string]convergeStats {
	t.Helper()
	var last map[string]convergeStats
	eventuallyAAE(t, deadline, what, func() error {
		st, err := statsAll(nodes)
		if err != nil {
			return err
		}
		last = st
		for _, n := range sortedNames(st) {
			if err := check(n, st[n]); err != nil {
				return err
			}
		}
		return nil
	})
	return last
}

// waitKeys waits until each named node's "keys" is want and returns the
// last stats.
func waitKeys(t *testing.T, deadline time.Time, nodes map[string]string, want int64, what string) map[string]convergeStats {
	t.Helper()
	return waitEvery(t, deadline, nodes, what, func(n string, st convergeStats) error {
		if st.Keys != want {
			return fmt.Errorf("%s holds %d keys, want %d", n, st.Keys, want)
		}
		return nil
	})
}

// waitFullPassAfter waits until every named node reports a full
// anti-entropy pass (last_full_pass) later than after, and returns the
// last stats.
func waitFullPassAfter(t *testing.T, deadline time.Time, nodes map[string]string, after time.Time, what string) map[string]convergeStats {
	t.Helper()
	return waitEvery(t, deadline, nodes, what, func(n string, st convergeStats) error {
		at, ok, err := st.AAE.lastFull()
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if !ok || !at.After(after) {
			return fmt.Errorf("%s: last full pass %q, want after %s", n, st.AAE.LastFullPass, after.Format(time.RFC3339))
		}
		return nil
	})
}

// keyPlacementFB is GET /v1/ring?key=K with the hinted-handoff fallbacks.
type keyPlacementFB struct {
	Partition int      `json:"partition"`
	Replicas  []string `json:"replicas"`
	Fallbacks []string `json:"fallbacks"`
}

// pickKey finds, among prefix-0, prefix-1, ..., a key whose replicas and
// first fallback as addr's ring places them satisfy ok (at most 1000
// candidates).
func pickKey(t *testing.T, addr, prefix string, ok func(keyPlacementFB) bool) (string, keyPlacementFB) {
	t.Helper()
	for i := range 1000 {
		key := fmt.Sprintf("%s-%d", prefix, i)
		var kp keyPlacementFB
		if err := getJSON(addr, "/v1/ring?key="+url.QueryEscape(key), &kp); err != nil {
			t.Fatalf("placement of %s: %v", key, err)
		}
		if ok(kp) {
			return key, kp
		}
	}
	t.Fatalf("no key %s-0..999 has the placement wanted", prefix)
	return "", keyPlacementFB{}
}

// pendingHintsFor is what the node at addr reports in GET /v1/members as
// the hints it holds for target.
func pendingHintsFor(addr, target string) (int64, error) {
	var ms []hintMember
	if err := getJSON(addr, "/v1/members", &ms); err != nil {
		return 0, err
	}
	i := slices.IndexFunc(ms, func(m hintMember) bool { return m.Name == target })
	if i < 0 {
		return 0, fmt.Errorf("%s is not in the member list %+v", target, ms)
	}
	return ms[i].PendingHints, nil
}

// aaeConfig is the YAML the anti-entropy tests append to every node's
// config: storage.fsync, anti-entropy every interval, and, when grace is
// not zero, that tombstone grace with the hint window set to it (the
// window may not be longer) and hints retried every 500ms.
func aaeConfig(fsync string, interval, grace time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "storage:\n  fsync: %s\n", fsync)
	if grace > 0 {
		fmt.Fprintf(&b, "  tombstone_gc: %s\nhints:\n  window: %s\n  retry_interval: 500ms\n", grace, grace)
	}
	fmt.Fprintf(&b, "aae:\n  interval: %s\n", interval)
	return b.String()
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
