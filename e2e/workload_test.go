package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the client side of the membership-change tests: a key
// set with one unique value per key, a pipelined Redis-protocol loader, a
// concurrent HTTP writer and reader, and the checks of where keys live.

// keySet names keys prefix-000000.. and gives each a value unique to this
// run, size bytes long, so a read can tell whose write it returns.
type keySet struct {
	prefix, token string
	size          int
}

func newKeySet(prefix string, size int) keySet {
	return keySet{prefix: prefix, token: fmt.Sprintf("%08x", rand.Uint32()), size: size}
}

func (k keySet) key(i int) string { return fmt.Sprintf("%s-%06d", k.prefix, i) }

// keys names the keys of the listed indices.
func (k keySet) keys(idx []int) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = k.key(i)
	}
	return out
}

func (k keySet) value(i int) string {
	v := fmt.Sprintf("%s:%s:%d:", k.prefix, k.token, i)
	if len(v) < k.size {
		v += strings.Repeat("x", k.size-len(v))
	}
	return v
}

// loadClient is the HTTP client of the concurrent workloads: the default
// transport keeps only 2 idle connections per host, which would make every
// worker beyond the second dial anew for each request.
var loadClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
}

func loadDo(method, url string, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

// setPipelined writes keys [0, n) of ks with Redis SET (the default W,
// quorum) over conns connections spread over addrs, each sending batches
// of 64 commands before reading their replies. Every SET must answer OK.
func setPipelined(ks keySet, n int, addrs []string, conns int) error {
	const batch = 64
	var next atomic.Int64
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- setWorker(ks, n, addrs[c%len(addrs)], batch, &next)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func setWorker(ks keySet, n int, addr string, batch int, next *atomic.Int64) error {
	rc, err := dialRESP(addr)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := bufio.NewWriter(rc.c)
	// Each pass takes one batch; n/batch+1 passes cover every key.
	for pass := 0; pass <= n/batch; pass++ {
		from := int(next.Add(int64(batch))) - batch
		if from >= n {
			return nil
		}
		to := min(from+batch, n)
		if err := rc.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			return err
		}
		for i := from; i < to; i++ {
			k, v := ks.key(i), ks.value(i)
			fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for i := from; i < to; i++ {
			r, err := rc.reply(0)
			if err != nil {
				return fmt.Errorf("SET %s on %s: %w", ks.key(i), addr, err)
			}
			if r != "OK" {
				return fmt.Errorf("SET %s on %s: %v", ks.key(i), addr, r)
			}
		}
	}
	return nil
}

// targets is the set of HTTP addresses the workloads send requests to,
// changed while they run as nodes join and leave.
type targets struct {
	mu    sync.Mutex // guards addrs
	addrs []string
}

func newTargets(addrs ...string) *targets { return &targets{addrs: addrs} }

func (ts *targets) add(addr string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.addrs = append(ts.addrs, addr)
}

func (ts *targets) pick(r *rand.Rand) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.addrs[r.IntN(len(ts.addrs))]
}

// outcomes counts the answers of a workload and keeps the first few
// failures of each kind for the report.
type outcomes struct {
	mu       sync.Mutex // guards every field
	ok       int
	counts   map[string]int
	examples map[string][]string
	// retried counts 503 answers a read retried (and then got right): a
	// refusal a client retries, never a wrong answer.
	retried int
}

func newOutcomes() *outcomes {
	return &outcomes{counts: map[string]int{}, examples: map[string][]string{}}
}

func (o *outcomes) success() {
	o.mu.Lock()
	o.ok++
	o.mu.Unlock()
}

func (o *outcomes) fail(kind, example string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[kind]++
	if len(o.examples[kind]) < 5 {
		o.examples[kind] = append(o.examples[kind], example)
	}
}

func (o *outcomes) failures() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += c
	}
	return n
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := fmt.Sprintf("%d ok (%d 503s retried)", o.ok, o.retried)
	for kind, c := range o.counts {
		s += fmt.Sprintf("; %d %s, e.g. %v", c, kind, o.examples[kind])
	}
	return s
}

// readRetries bounds the retries of a read answered 503.
const readRetries = 20

// readOne reads key i of ks with R=r through addr and classifies the
// answer. A 503 (the coordinator's failure detector, starved on a loaded
// machine, briefly believed replicas down, or no quorum answered in time)
// is retried as a client would, up to readRetries times: the invariant
// under test is that no read answers 404 or a wrong value, and a refusal
// is neither.
func readOne(ks keySet, i int, addr, r string, o *outcomes) {
	code, body, err := loadDo(http.MethodGet, "http://"+addr+"/v1/kv/"+ks.key(i)+"?r="+r, "")
	for try := 0; err == nil && code == http.StatusServiceUnavailable && try < readRetries; try++ {
		o.mu.Lock()
		o.retried++
		o.mu.Unlock()
		time.Sleep(100 * time.Millisecond) // a client's backoff, not a synchronisation
		code, body, err = loadDo(http.MethodGet, "http://"+addr+"/v1/kv/"+ks.key(i)+"?r="+r, "")
	}
	want := ks.value(i)
	switch {
	case err != nil:
		o.fail("transport errors", fmt.Sprintf("%s via %s: %v", ks.key(i), addr, err))
	case code == http.StatusOK && string(body) == want:
		o.success()
	case code == http.StatusOK:
		o.fail("wrong values", fmt.Sprintf("%s via %s: %.60q", ks.key(i), addr, body))
	case code == http.StatusNotFound:
		o.fail("404s", fmt.Sprintf("%s via %s", ks.key(i), addr))
	default:
		o.fail("other answers", fmt.Sprintf("%s via %s: %d %.200s", ks.key(i), addr, code, body))
	}
}

// readsPerSecond paces the reader.
const readsPerSecond = 1000

// reader reads random keys of [0, n) with R=2 from 4 goroutines until
// stop is closed, at most maxReads in all, paced to about readsPerSecond
// so that it samples the whole change without taking the 2 cores the
// transfer runs on.
type reader struct {
	stop chan struct{}
	once sync.Once // closes stop
	wg   sync.WaitGroup
	out  *outcomes
}

func startReader(t *testing.T, ks keySet, n int, ts *targets, maxReads int) *reader {
	seed := rand.Uint64()
	t.Logf("reader seed %d", seed)
	rd := &reader{stop: make(chan struct{}), out: newOutcomes()}
	t.Cleanup(func() { rd.halt() })
	const workers = 4
	for w := range workers {
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			pace := time.NewTicker(workers * time.Second / readsPerSecond)
			defer pace.Stop()
			for range maxReads / workers {
				select {
				case <-rd.stop:
					return
				case <-pace.C:
				}
				readOne(ks, r.IntN(n), ts.pick(r), "2", rd.out)
			}
		}()
	}
	return rd
}

// halt stops the reader and returns what it saw.
func (rd *reader) halt() *outcomes {
	rd.once.Do(func() { close(rd.stop) })
	rd.wg.Wait()
	return rd.out
}

// writesPerSecond paces the writer.
const writesPerSecond = 400

// writer writes keys 0, 1, 2, ... of ks with W=2 through addresses of ts
// from 8 goroutines until stop is closed, at most max keys, paced to about
// writesPerSecond, and records which were acknowledged.
type writer struct {
	stop  chan struct{}
	once  sync.Once // closes stop
	wg    sync.WaitGroup
	next  atomic.Int64
	acked []atomic.Bool
	out   *outcomes
}

func startWriter(t *testing.T, ks keySet, ts *targets, max int) *writer {
	wr := &writer{stop: make(chan struct{}), acked: make([]atomic.Bool, max), out: newOutcomes()}
	t.Cleanup(func() { wr.halt() })
	const workers = 8
	for w := range workers {
		wr.wg.Add(1)
		go func() {
			defer wr.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 0))
			pace := time.NewTicker(workers * time.Second / writesPerSecond)
			defer pace.Stop()
			for range max {
				select {
				case <-wr.stop:
					return
				case <-pace.C:
				}
				i := int(wr.next.Add(1)) - 1
				if i >= max {
					return
				}
				addr := ts.pick(r)
				code, body, err := loadDo(http.MethodPut, "http://"+addr+"/v1/kv/"+ks.key(i)+"?w=2", ks.value(i))
				switch {
				case err != nil:
					wr.out.fail("transport errors", fmt.Sprintf("%s via %s: %v", ks.key(i), addr, err))
				case code == http.StatusNoContent:
					wr.acked[i].Store(true)
					wr.out.success()
				default:
					wr.out.fail("refused writes", fmt.Sprintf("%s via %s: %d %.200s", ks.key(i), addr, code, body))
				}
			}
		}()
	}
	return wr
}

// halt stops the writer and returns the indices of acknowledged keys and
// how many keys were attempted.
func (wr *writer) halt() (acked []int, attempted int) {
	wr.once.Do(func() { close(wr.stop) })
	wr.wg.Wait()
	attempted = min(int(wr.next.Load()), len(wr.acked))
	for i := range attempted {
		if wr.acked[i].Load() {
			acked = append(acked, i)
		}
	}
	return acked, attempted
}

// readAll reads every listed key of ks with R=r, spread over addrs from 8
// goroutines, and returns the outcomes.
func readAll(ks keySet, idx []int, addrs []string, r string) *outcomes {
	o := newOutcomes()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range len(idx) {
				j := int(next.Add(1)) - 1
				if j >= len(idx) {
					return
				}
				readOne(ks, idx[j], addrs[(j+w)%len(addrs)], r, o)
			}
		}()
	}
	wg.Wait()
	return o
}

func upTo(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// ringHash is the ring's documented key hash (docs/ring.md): 64-bit FNV-1a
// followed by MurmurHash3's fmix64 finalizer; a key's partition is the
// hash mod the partition count.
func ringHash(b string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// keyPlacement is GET /v1/ring?key=K.
type keyPlacement struct {
	Partition int      `json:"partition"`
	Replicas  []string `json:"replicas"`
}

// expectedHolders counts, per node, the keys whose replicas (as addr's
// serving ring places them) include the node: what each node must hold
// once a change is over. It asks addr for the replicas of one key per
// partition and checks that the node's partition of that key is the one
// computed here.
func expectedHolders(addr string, keys []string) (map[string]int64, error) {
	pl, err := placements(addr, keys)
	if err != nil {
		return nil, err
	}
	want := map[string]int64{}
	for _, p := range pl {
		for _, r := range p.replicas {
			want[r] += int64(p.count)
		}
	}
	return want, nil
}

// placement is one partition's replicas and how many of the keys asked
// about it holds.
type placement struct {
	replicas []string
	count    int
}

// placements asks the node at addr for the replicas of every partition
// that holds one of keys (one key per partition, 8 at a time).
func placements(addr string, keys []string) (map[int]placement, error) {
	var in inspection
	if err := getJSON(addr, "/v1/ring", &in); err != nil {
		return nil, err
	}
	if in.Partitions < 1 {
		return nil, fmt.Errorf("ring of %d partitions", in.Partitions)
	}
	byPartition := map[int][]string{}
	for _, k := range keys {
		p := int(ringHash(k) % uint64(in.Partitions))
		byPartition[p] = append(byPartition[p], k)
	}
	type job struct {
		p     int
		first string
		count int
	}
	jobs := make(chan job, len(byPartition))
	for p, ks := range byPartition {
		jobs <- job{p, ks[0], len(ks)}
	}
	close(jobs)
	var mu sync.Mutex // guards out and errs
	out := map[int]placement{}
	var errs []error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				var kp keyPlacement
				err := getJSON(addr, "/v1/ring?key="+url.QueryEscape(j.first), &kp)
				if err == nil && kp.Partition != j.p {
					err = fmt.Errorf("key %s is in partition %d, computed %d", j.first, kp.Partition, j.p)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out[j.p] = placement{replicas: kp.Replicas, count: j.count}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// newCopies counts the key copies a change from before to after must put
// on replicas that did not hold them: for every partition, its keys times
// the replicas after that were not replicas before.
func newCopies(before, after map[int]placement) int64 {
	var n int64
	for p, a := range after {
		for _, r := range a.replicas {
			if !slices.Contains(before[p].replicas, r) {
				n += int64(a.count)
			}
		}
	}
	return n
}
