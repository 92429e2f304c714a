package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// This file holds the active anti-entropy driver: its configuration, the
// passes over this node's partitions, and the state and counters behind
// Status and Stats. One exchange with one peer is in aae_exchange.go; the
// serving side in aae_serve.go.

// AEConfig configures an AntiEntropy.
type AEConfig struct {
	// Self is this node's name as it appears in preference lists. Required.
	Self string
	// Partitions is the number of ring partitions. Required.
	Partitions int
	// Placement returns the current ring snapshot, read once per partition
	// and exchange. Required.
	Placement func() Placement
	// Store is the local store: repaired sets are read from it and merged
	// into it. Required.
	Store Store
	// Tree is the local store's hash trees. Required.
	Tree Tree
	// Transport carries the exchange's calls to peers. Required.
	Transport Transport
	// Liveness says which peers to skip; nil treats every node as alive.
	Liveness Liveness
	// Interval is the time one pass over this node's partitions takes: the
	// partitions' exchanges start spread evenly over it (a pass that runs
	// late goes on at once). Default 30s.
	Interval time.Duration
	// RateBytes bounds the repair traffic, sets fetched plus sets pushed,
	// in bytes per second. Default 8 MiB/s; math.Inf(1) is unlimited.
	RateBytes float64
	// MaxKeysPerCall is how many keys one KindKeys call asks for, 1 to
	// MaxDigests. Default DefaultMaxKeysPerCall (1024).
	MaxKeysPerCall int
	// BatchBytes bounds the key bytes of one fetch call and the sets of one
	// push (a single larger set still goes alone). Default 1 MiB.
	BatchBytes int64
	// CallTimeout is the deadline of each call to a peer. Default 10s.
	CallTimeout time.Duration
	// Now stamps the times the driver records (exchange starts, which
	// MarkSynced receives; LastFull, LastExchange). Default time.Now.
	// Waits (pass spreading, rate limit) use the time package's timers,
	// so tests run the driver in a testing/synctest bubble.
	Now func() time.Time
	// Logger receives the driver's lines; nil discards.
	Logger *slog.Logger
	// OnExchange, when set, is called after every exchange with its
	// result and error (metrics). It must not block.
	OnExchange func(partition int, peer string, res ExchangeResult, err error)
	// OnSynced, when set, is called after Tree.MarkSynced(partition, ...)
	// advanced the partition's sync time, on the goroutine of the exchange
	// that completed the round (node runs storage's Collect there). No
	// other exchange of the partition runs meanwhile.
	OnSynced func(ctx context.Context, partition int)
}

// DefaultAEConfig returns an AEConfig with every default set; the caller
// fills Self, Partitions, Placement, Store, Tree and Transport.
func DefaultAEConfig() AEConfig {
	return AEConfig{
		Interval:       30 * time.Second,
		RateBytes:      DefaultAERateBytes,
		MaxKeysPerCall: DefaultMaxKeysPerCall,
		BatchBytes:     1 << 20,
		CallTimeout:    10 * time.Second,
		Now:            time.Now,
	}
}

// DefaultAERateBytes is AEConfig.RateBytes's default: 8 MiB/s.
const DefaultAERateBytes = 8 << 20

// Validate checks required fields and ranges after zero values were given
// their documented defaults.
func (c AEConfig) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("replica: anti-entropy config: "+f, a...)) }
	if c.Self == "" {
		bad("Self is required")
	}
	if c.Partitions < 1 {
		bad("Partitions must be >= 1, got %d", c.Partitions)
	}
	if c.Placement == nil || c.Store == nil || c.Tree == nil || c.Transport == nil {
		bad("Placement, Store, Tree and Transport are required")
	}
	if c.Interval <= 0 {
		bad("Interval must be positive, got %v", c.Interval)
	}
	if !(c.RateBytes > 0) {
		bad("RateBytes must be positive (math.Inf(1): unlimited), got %v", c.RateBytes)
	}
	if c.MaxKeysPerCall < 1 || c.MaxKeysPerCall > MaxDigests {
		bad("MaxKeysPerCall must be 1..%d, got %d", MaxDigests, c.MaxKeysPerCall)
	}
	if c.BatchBytes <= 0 {
		bad("BatchBytes must be positive, got %d", c.BatchBytes)
	}
	if c.CallTimeout <= 0 {
		bad("CallTimeout must be positive, got %v", c.CallTimeout)
	}
	return errors.Join(errs...)
}

// withDefaults fills the documented zero values.
func (c AEConfig) withDefaults() AEConfig {
	d := DefaultAEConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.RateBytes == 0 {
		c.RateBytes = d.RateBytes
	}
	if c.MaxKeysPerCall == 0 {
		c.MaxKeysPerCall = d.MaxKeysPerCall
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// AntiEntropy compares this node's partitions with their other replicas
// and merges what differs, in both directions (active anti-entropy: see
// docs). Run drives periodic passes; Exchange runs one exchange. Safe for
// concurrent use.
type AntiEntropy struct {
	cfg AEConfig
	log *slog.Logger
	// lim paces repair bytes; nil when unlimited.
	lim     *rate.Limiter
	running atomic.Bool

	mu           sync.Mutex // guards parts and lastFullPass
	parts        map[int]*aePart
	lastFullPass time.Time

	exchanges, failures         atomic.Uint64
	keysRepaired, bytesRepaired atomic.Uint64
}

// aePart is the driver's record of one partition.
type aePart struct {
	// busy holds a token while an exchange of the partition runs: one at a
	// time, so that two never repair the same keys and the sync round
	// (lastOK, MarkSynced, OnSynced) is settled by one at a time.
	busy chan struct{}

	// The rest is guarded by AntiEntropy.mu.
	lastOK        map[string]time.Time // peer -> start of the last complete exchange
	synced        time.Time            // latest time given to MarkSynced
	lastFull      time.Time
	lastExchange  time.Time
	keysRepaired  uint64
	bytesRepaired uint64
	inSync        bool
	lastErr       string
}

// NewAntiEntropy returns a driver; zero values of Interval, RateBytes,
// MaxKeysPerCall, BatchBytes, CallTimeout, Now and Logger get their
// defaults.
func NewAntiEntropy(cfg AEConfig) (*AntiEntropy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &AntiEntropy{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "aae", "node", cfg.Self),
		parts: map[int]*aePart{},
	}
	if !math.IsInf(cfg.RateBytes, 1) {
		burst := int(min(max(cfg.RateBytes, 1), float64(cfg.BatchBytes)))
		a.lim = rate.NewLimiter(rate.Limit(cfg.RateBytes), burst)
		// Start with an empty bucket, so that the rate holds from the
		// first repair rather than after a free burst.
		a.lim.ReserveN(time.Now(), burst)
	}
	return a, nil
}

// Run makes a pass over this node's partitions every Interval until ctx
// ends (the node's lifetime ctx), then returns nil. In each pass, every
// partition this node replicates and that no membership change is moving
// is exchanged with each of its other replicas that Liveness says is up,
// one peer after the other. It is an error to call Run twice at once.
func (a *AntiEntropy) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("replica: anti-entropy is already running")
	}
	defer a.running.Store(false)
	for ctx.Err() == nil {
		start := time.Now()
		a.pass(ctx, start)
		if sleepUntil(ctx, start.Add(a.cfg.Interval)) != nil {
			break
		}
	}
	return nil
}

// pass exchanges every partition of this node once, spread over Interval.
func (a *AntiEntropy) pass(ctx context.Context, start time.Time) {
	parts := a.mine()
	if len(parts) == 0 {
		return
	}
	gap := a.cfg.Interval / time.Duration(len(parts))
	full := true
	for i, p := range parts {
		if sleepUntil(ctx, start.Add(gap*time.Duration(i))) != nil {
			return
		}
		if !a.runPartition(ctx, p) {
			full = false
		}
	}
	if full && ctx.Err() == nil {
		a.mu.Lock()
		a.lastFullPass = a.cfg.Now()
		a.mu.Unlock()
	}
}

// runPartition exchanges partition p with each live peer and reports
// whether every exchange completed. A failure is logged at Warn once per
// partition and pass, further ones at Debug.
func (a *AntiEntropy) runPartition(ctx context.Context, p int) bool {
	pl := a.cfg.Placement()
	if pl == nil || len(pl.Pending(p)) > 0 || !slices.Contains(pl.Replicas(p), a.cfg.Self) {
		// A partition being moved is settled by the transfer, not here.
		return false
	}
	peers := others(pl.Replicas(p), a.cfg.Self)
	start := a.cfg.Now()
	if len(peers) == 0 {
		// The only replica is in sync with itself.
		a.settle(ctx, p, nil, start)
		a.mu.Lock()
		a.state(p).lastFull = start
		a.mu.Unlock()
		return true
	}
	full, warned := true, false
	for _, peer := range peers {
		if ctx.Err() != nil {
			return false
		}
		if a.cfg.Liveness != nil && !a.cfg.Liveness.Alive(peer) {
			a.log.Debug("peer down, exchange skipped", "partition", p, "peer", peer)
			full = false
			continue
		}
		if _, err := a.Exchange(ctx, p, peer); err != nil {
			full = false
			if ctx.Err() != nil {
				return false
			}
			lvl := slog.LevelWarn
			if warned {
				lvl = slog.LevelDebug
			}
			warned = true
			a.log.Log(ctx, lvl, "exchange failed", "partition", p, "peer", peer, "err", err)
		}
	}
	if full {
		a.mu.Lock()
		a.state(p).lastFull = start
		a.mu.Unlock()
	}
	return full
}

// mine returns, ascending, the partitions this node replicates now.
func (a *AntiEntropy) mine() []int { return a.mineOf(a.cfg.Placement()) }

// mineOf returns, ascending, the partitions this node replicates in pl.
func (a *AntiEntropy) mineOf(pl Placement) []int {
	if pl == nil {
		return nil
	}
	var out []int
	for p := range a.cfg.Partitions {
		if slices.Contains(pl.Replicas(p), a.cfg.Self) {
			out = append(out, p)
		}
	}
	return out
}

// state returns p's record, creating it. Called with a.mu held.
func (a *AntiEntropy) state(p int) *aePart {
	st := a.parts[p]
	if st == nil {
		st = &aePart{busy: make(chan struct{}, 1), lastOK: map[string]time.Time{}}
		a.parts[p] = st
	}
	return st
}

// record books an exchange's outcome, then settles the partition's sync
// round. Called with the partition's busy token held.
func (a *AntiEntropy) record(ctx context.Context, p int, peer string, start time.Time, res ExchangeResult, err error) {
	a.exchanges.Add(1)
	a.keysRepaired.Add(uint64(res.KeysRepaired))
	a.bytesRepaired.Add(uint64(res.Bytes))
	a.mu.Lock()
	st := a.state(p)
	st.lastExchange = start
	st.keysRepaired += uint64(res.KeysRepaired)
	st.bytesRepaired += uint64(res.Bytes)
	st.inSync = err == nil && res.InSync
	if err != nil {
		st.lastErr = fmt.Sprintf("%s: %v", peer, err)
	} else {
		st.lastErr = ""
		st.lastOK[peer] = start
	}
	a.mu.Unlock()
	switch {
	case err != nil:
		a.failures.Add(1)
	case res.KeysRepaired > 0:
		a.log.Info("exchange repaired keys", "partition", p, "peer", peer, "keys", res.KeysRepaired,
			"pulled", res.KeysPulled, "pushed", res.KeysPushed, "bytes", res.Bytes)
	default:
		a.log.Debug("exchange done", "partition", p, "peer", peer, "in_sync", res.InSync, "calls", res.Calls)
	}
	if a.cfg.OnExchange != nil {
		a.cfg.OnExchange(p, peer, res, err)
	}
	if err == nil {
		if pl := a.cfg.Placement(); pl != nil {
			a.settle(ctx, p, others(pl.Replicas(p), a.cfg.Self), time.Time{})
		}
	}
}

// settle calls MarkSynced for p once every peer in peers has completed an
// exchange with this node, with the earliest of those exchanges' starts
// (alone when there are no peers: at), when that advances the
// partition's sync time; then OnSynced.
func (a *AntiEntropy) settle(ctx context.Context, p int, peers []string, at time.Time) {
	a.mu.Lock()
	st := a.state(p)
	for i, peer := range peers {
		t, ok := st.lastOK[peer]
		if !ok {
			a.mu.Unlock()
			return
		}
		if i == 0 || t.Before(at) {
			at = t
		}
	}
	if !at.After(st.synced) {
		a.mu.Unlock()
		return
	}
	st.synced = at
	a.mu.Unlock()
	a.cfg.Tree.MarkSynced(p, at)
	if a.cfg.OnSynced != nil {
		a.cfg.OnSynced(ctx, p)
	}
}

// others returns nodes without self.
func others(nodes []string, self string) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if n != self {
			out = append(out, n)
		}
	}
	return out
}

// sleepUntil waits until t or until ctx ends (its error).
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pace waits until n more repair bytes fit RateBytes, or ctx ends. Bytes
// beyond the limiter's burst wait in chunks of it.
func (a *AntiEntropy) pace(ctx context.Context, n int64) error {
	if a.lim == nil {
		return nil
	}
	for n > 0 {
		k := int(min(n, int64(a.lim.Burst())))
		r := a.lim.ReserveN(time.Now(), k)
		if !r.OK() { // k <= burst: cannot happen
			return nil
		}
		if d := r.Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return ctx.Err()
			}
		}
		n -= int64(k)
	}
	return nil
}

// PartitionAAE is one partition's anti-entropy state on this node.
type PartitionAAE struct {
	// Partition is the partition.
	Partition int
	// Replicas is its preference list now.
	Replicas []string
	// LastFull is when the last pass began in which this partition was
	// exchanged with every other replica without error; zero before one.
	LastFull time.Time
	// LastExchange is when its last exchange began (by any peer, with or
	// without error); zero before one.
	LastExchange time.Time
	// Synced is the latest time given to Tree.MarkSynced; zero before one.
	Synced time.Time
	// KeysRepaired and BytesRepaired total the partition's repairs here
	// since start (ExchangeResult.KeysRepaired and Bytes).
	KeysRepaired, BytesRepaired uint64
	// InSync reports that the last exchange found the trees equal.
	InSync bool
	// LastError is the last exchange's error, prefixed by the peer; empty
	// when it succeeded.
	LastError string
}

// Status returns, ascending, the state of every partition this node
// replicates now.
func (a *AntiEntropy) Status() []PartitionAAE {
	pl := a.cfg.Placement() // one snapshot: it may change between two calls
	parts := a.mineOf(pl)
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]PartitionAAE, 0, len(parts))
	for _, p := range parts {
		s := PartitionAAE{Partition: p, Replicas: slices.Clone(pl.Replicas(p))}
		if st := a.parts[p]; st != nil {
			s.LastFull, s.LastExchange, s.Synced = st.lastFull, st.lastExchange, st.synced
			s.KeysRepaired, s.BytesRepaired = st.keysRepaired, st.bytesRepaired
			s.InSync, s.LastError = st.inSync, st.lastErr
		}
		out = append(out, s)
	}
	return out
}

// AEStats is a snapshot of the driver's counters since start.
type AEStats struct {
	// Exchanges counts exchanges run, ExchangeFailures those that ended
	// with an error.
	Exchanges, ExchangeFailures uint64
	// KeysRepaired counts local applies that changed a key plus sets
	// pushed to peers; BytesRepaired the bytes of sets fetched and pushed.
	KeysRepaired, BytesRepaired uint64
	// Partitions is the number of partitions this node replicates now.
	Partitions int
	// PartitionsSynced counts those that MarkSynced was called for since
	// start (every replica exchanged with without error).
	PartitionsSynced int
	// PartitionsInSync counts those whose last exchange found the trees
	// equal.
	PartitionsInSync int
	// LastFullPass is when the last pass ended in which every partition was
	// exchanged with every other replica without error; zero before one.
	LastFullPass time.Time
}

// Stats returns the counters.
func (a *AntiEntropy) Stats() AEStats {
	s := AEStats{
		Exchanges: a.exchanges.Load(), ExchangeFailures: a.failures.Load(),
		KeysRepaired: a.keysRepaired.Load(), BytesRepaired: a.bytesRepaired.Load(),
	}
	parts := a.mine()
	a.mu.Lock()
	defer a.mu.Unlock()
	s.Partitions, s.LastFullPass = len(parts), a.lastFullPass
	for _, p := range parts {
		if st := a.parts[p]; st != nil {
			if !st.synced.IsZero() {
				s.PartitionsSynced++
			}
			if st.inSync {
				s.PartitionsInSync++
			}
		}
	}
	return s
}
