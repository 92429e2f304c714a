package replica

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/internal/vfs"
	"golang.org/x/time/rate"
)

// TransferPlacement is what the puller needs of the placement (satisfied
// by *ring.Transition). Its methods are pure lookups, safe for concurrent
// use.
type TransferPlacement interface {
	Placement
	// PlanHash identifies the plan the placement was built from
	// (ring.Plan.Hash). With Epoch it names the change whose transfers
	// are tracked: done partitions are kept, persisted and reported per
	// (epoch, hash).
	PlanHash() uint64
	// PendingOf lists, ascending, the partitions in whose Pending node is:
	// those it must pull. Shared, do not modify.
	PendingOf(node string) []int
}

// PullerConfig configures a Puller.
type PullerConfig struct {
	// Self is this node's name, as in the placement. Required.
	Self string
	// Placement returns the current placement snapshot, nil while no plan
	// is known; the puller reads it at each step (the caller makes it an
	// atomic load) and calls Wake when it changes. Required.
	Placement func() TransferPlacement
	// Store is the local storage engine pulled sets are merged into.
	// Required.
	Store Store
	// Transport carries the pulls. Required.
	Transport Transport
	// Alive reports whether a source is believed up; a source that is not
	// is not asked, and the partition is retried after Retry. nil: every
	// node is alive.
	Alive func(node string) bool
	// Usable reports whether a node may be asked as a source at all: false
	// for a node removed for good, whose copy is lost, so that the
	// partition completes from the others. nil: every node is usable.
	Usable func(node string) bool
	// Dir is the directory TransfersFile lives in (the data directory). It
	// must exist. "" keeps progress in memory only (tests): a restart then
	// pulls every partition again.
	Dir string
	// FS is the filesystem TransfersFile is read and written through, so
	// that a whole node can run on one injected filesystem. Default nil:
	// the operating system's (vfs.OSFS, file mode 0600).
	FS vfs.FS
	// MaxInFlight is how many partitions are pulled at once. Default 4.
	MaxInFlight int
	// RateBytes limits the bytes per second of received sets (keys plus
	// sibling sets, as Scan counts them); 0 is unlimited. SetRate changes
	// it at run time.
	RateBytes float64
	// BatchKeys is the keys asked for per pull, 1..MaxTransferBatchKeys;
	// sources bound a batch by bytes too. Default DefaultTransferBatchKeys.
	BatchKeys int
	// Retry is the wait before pulling a partition again after a source
	// failed, was down or refused (its plan older than ours). Default 1s.
	Retry time.Duration
	// Timeout bounds each pull call. Default 10s.
	Timeout time.Duration
	// Logger receives progress and failures; nil discards.
	Logger *slog.Logger
}

// DefaultPullerConfig returns a PullerConfig with every default set; the
// caller fills Self, Placement, Store, Transport and Dir.
func DefaultPullerConfig() PullerConfig {
	return PullerConfig{
		MaxInFlight: 4,
		BatchKeys:   DefaultTransferBatchKeys,
		Retry:       time.Second,
		Timeout:     10 * time.Second,
	}
}

// Validate checks required fields and ranges after zero values were given
// their documented defaults.
func (c PullerConfig) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("replica: puller config: "+f, a...)) }
	if c.Self == "" {
		bad("Self is required")
	}
	if c.Placement == nil {
		bad("Placement is required")
	}
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Transport == nil {
		bad("Transport is required")
	}
	if c.MaxInFlight < 1 {
		bad("MaxInFlight must be >= 1, got %d", c.MaxInFlight)
	}
	if c.BatchKeys < 1 || c.BatchKeys > MaxTransferBatchKeys {
		bad("BatchKeys must be in 1..%d, got %d", MaxTransferBatchKeys, c.BatchKeys)
	}
	if !(c.RateBytes >= 0) || math.IsInf(c.RateBytes, 0) {
		bad("RateBytes must be a finite number >= 0 (0 is unlimited), got %v", c.RateBytes)
	}
	if c.Retry <= 0 || c.Timeout <= 0 {
		bad("Retry and Timeout must be positive, got %v and %v", c.Retry, c.Timeout)
	}
	return errors.Join(errs...)
}

func (c PullerConfig) withDefaults() PullerConfig {
	d := DefaultPullerConfig()
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.BatchKeys == 0 {
		c.BatchKeys = d.BatchKeys
	}
	if c.Retry == 0 {
		c.Retry = d.Retry
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FS == nil {
		c.FS = vfs.OSFS{}
	}
	return c
}

// PullStats is a snapshot of a puller's progress, for metrics and the
// admin API.
type PullStats struct {
	// Epoch is the epoch of the change being worked on (0 before Run saw
	// a placement).
	Epoch uint64
	// Pending, InFlight and Done partition this node's pending partitions
	// of that change: waiting (never tried, or retrying after a failure),
	// being pulled now, and complete (persisted, reported by Progress).
	Pending, InFlight, Done int
	// Keys and Bytes count entries and their bytes received and merged
	// since NewPuller, over every change (cumulative counters).
	Keys, Bytes int64
	// NewBytes counts the bytes of received entries that changed the
	// local store: one copy of what moved, where Bytes counts the copy
	// from every source (cumulative).
	NewBytes int64
	// BytesLeft estimates what remains of the partitions not done: for
	// each source not finished, its total for the partition (from its
	// last batch) minus what was received from it. A source not asked yet
	// counts 0, so the estimate grows as pulls start.
	BytesLeft int64
	// Rate is the current limit in bytes per second; 0 is unlimited.
	Rate float64
	// Failures counts pulls that failed, were refused or skipped a down
	// source, and completions that could not be persisted (cumulative).
	Failures int64
}

// Puller makes this node a full replica of the partitions it is pending
// in: for each, it pulls every source (every node of Replicas but itself
// that Usable allows) in key order, merges what it gets into the local
// store, and once all sources finished records the partition as done for
// the change, durably, before Progress reports it.
//
// A source that is down, fails or refuses makes the partition wait Retry
// and try again; cursors of the change are kept in memory across retries,
// so a source that finished is not asked again and one that failed
// resumes after the last merged key. A new change (epoch or plan hash)
// cancels the pulls of the old one and starts over; the data already
// merged makes that cheap. Methods are safe for concurrent use; Run is
// called once.
type Puller struct {
	cfg  PullerConfig
	log  *slog.Logger
	wake chan struct{} // capacity 1: a re-plan is requested
	lim  *rate.Limiter

	rateMu      sync.Mutex // guards rate, rateChanged and changes of lim's limit
	rate        float64
	rateChanged chan struct{} // closed (and replaced) by SetRate

	keys, bytes, failures atomic.Int64
	newBytes              atomic.Int64

	mu sync.Mutex // guards resume, work and every partState and sourceState in it
	// resume is the state loaded from TransfersFile, kept until Run sees
	// a placement of its plan (then applied) or of a later one (dropped).
	resume *transferState
	work   *changeWork // nil until Run saw a placement

	// running is set while a Run runs: its loop is the only writer of
	// the transfers file (a fixed temp name) and of work.
	running atomic.Bool
}

// ErrPullerRunning is returned by Puller.Run while another Run of the same
// Puller is running.
var ErrPullerRunning = errors.New("replica: puller is already running")

// changeWork is the puller's state for one change (epoch, plan hash).
type changeWork struct {
	pl     TransferPlacement
	epoch  uint64
	hash   uint64
	ctx    context.Context // canceled when the change is abandoned or Run ends
	cancel context.CancelFunc
	order  []int // this node's pending partitions, ascending
	parts  map[int]*partState
}

// partState is one pending partition within a change.
type partState struct {
	done    bool
	running bool
	retryAt time.Time // zero: may start at once
	sources map[string]*sourceState
}

// sourceState is one source's progress on a partition within a change.
type sourceState struct {
	cursor   []byte // last key merged from this source
	finished bool   // its last batch said no more
	total    int64  // its bytes for the partition, from its last batch
	received int64  // bytes merged from it
}

// pullResult is a partition worker's outcome.
type pullResult struct {
	w    *changeWork
	part int
	err  error
}

const (
	// pullBurstBytes is the limiter's bucket: a default-sized batch. Larger
	// batches wait in chunks of it.
	pullBurstBytes = DefaultTransferBatchBytes
	// applyParallel is how many entries of a batch are merged at once, so
	// that a store that fsyncs per write commits them in groups.
	applyParallel = 16
)

// NewPuller returns a Puller. Zero values of MaxInFlight, BatchKeys,
// Retry, Timeout and Logger get their defaults. With Dir set it reads
// TransfersFile: a file that cannot be used (damaged, oversized, of
// another node) is logged and ignored, which costs at most pulling again.
func NewPuller(cfg PullerConfig) (*Puller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		// List fails on a missing directory and on a file alike, on
		// every FS (an injected one may not implement Stat).
		if _, err := cfg.FS.List(cfg.Dir); err != nil {
			return nil, fmt.Errorf("replica: puller config: Dir %s is not a directory (%v)", cfg.Dir, err)
		}
	}
	p := &Puller{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "transfer", "node", cfg.Self),
		wake:        make(chan struct{}, 1),
		lim:         rate.NewLimiter(toLimit(cfg.RateBytes), pullBurstBytes),
		rate:        normRate(cfg.RateBytes),
		rateChanged: make(chan struct{}),
	}
	if cfg.Dir != "" {
		st, err := loadTransfers(cfg.FS, cfg.Dir, cfg.Self)
		switch {
		case err == nil:
			p.resume = &st
			p.log.Info("found transfer progress", "epoch", st.Epoch, "plan_hash", st.PlanHash, "done", len(st.Done))
		case errors.Is(err, fs.ErrNotExist):
		default:
			p.log.Warn("discarding transfer progress; its partitions will be pulled again",
				"file", filepath.Join(cfg.Dir, TransfersFile), "err", err)
		}
	}
	return p, nil
}

// Wake tells the puller the placement changed: it re-plans now instead
// of at its next event. It never blocks.
func (p *Puller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run pulls the partitions this node is pending in, for the current
// placement, until ctx ends; then it cancels its pulls and returns nil
// once they stopped. It waits (on Wake, a retry timer or a finished pull)
// without spinning when there is nothing to do. While one Run runs,
// another returns ErrPullerRunning at once: two would write the transfers
// file through one temp file and work on one change twice.
func (p *Puller) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrPullerRunning
	}
	defer p.running.Store(false)
	p.startPacing()
	results := make(chan pullResult)
	running := 0 // workers not yet reported, of any change
	defer func() {
		p.mu.Lock()
		if p.work != nil {
			p.work.cancel()
		}
		p.mu.Unlock()
		for ; running > 0; running-- {
			<-results
		}
	}()
	for {
		var next time.Time
		if w := p.replan(ctx); w != nil {
			next = p.launch(w, results, &running)
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-fire:
		case r := <-results:
			rs := collectResults(r, results, running)
			running -= len(rs)
			p.finish(rs)
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// replan reads the placement and, when its change differs from the one
// being worked on, abandons the old change and sets up the new one.
func (p *Puller) replan(ctx context.Context) *changeWork {
	pl := p.cfg.Placement()
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl == nil {
		return p.work
	}
	epoch, hash := pl.Epoch(), pl.PlanHash()
	if w := p.work; w != nil && w.epoch == epoch && w.hash == hash {
		return w
	}
	if old := p.work; old != nil {
		old.cancel()
		p.log.Info("plan changed; abandoning transfers of the old one", "old_epoch", old.epoch, "epoch", epoch)
	}
	w := &changeWork{pl: pl, epoch: epoch, hash: hash, parts: map[int]*partState{}}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for _, part := range pl.PendingOf(p.cfg.Self) {
		if part < 0 || part >= maxTransferPartitions {
			p.log.Warn("ignoring a pending partition out of range", "partition", part)
			continue
		}
		if _, dup := w.parts[part]; !dup {
			w.order = append(w.order, part)
			w.parts[part] = &partState{sources: map[string]*sourceState{}}
		}
	}
	slices.Sort(w.order) // Progress lists done partitions ascending
	if r := p.resume; r != nil {
		switch {
		case r.Epoch == epoch && r.PlanHash == hash:
			n := 0
			for _, d := range r.Done {
				if ps, ok := w.parts[int(d)]; ok {
					ps.done = true
					n++
				}
			}
			p.resume = nil
			p.log.Info("resuming transfers", "epoch", epoch, "done", n, "pending", len(w.order))
		case r.Epoch > epoch:
			// This placement is older than the file: a later one may match.
		default:
			p.resume = nil
			p.log.Info("transfer progress on disk is for another plan; starting over",
				"file_epoch", r.Epoch, "epoch", epoch)
		}
	}
	if len(w.order) > 0 {
		p.log.Info("pulling partitions", "epoch", epoch, "partitions", len(w.order))
	}
	p.work = w
	return w
}

// launch starts workers for partitions of w that may start, while fewer
// than MaxInFlight run; it returns when the earliest waiting partition
// may be retried (zero: no timer needed).
func (p *Puller) launch(w *changeWork, results chan<- pullResult, running *int) (next time.Time) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range w.order {
		if *running >= p.cfg.MaxInFlight {
			return time.Time{} // a finishing worker is the next event
		}
		ps := w.parts[part]
		if ps.done || ps.running {
			continue
		}
		if ps.retryAt.After(now) {
			if next.IsZero() || ps.retryAt.Before(next) {
				next = ps.retryAt
			}
			continue
		}
		ps.running = true
		*running++
		go func() {
			results <- pullResult{w: w, part: part, err: p.pullPartition(w, part)}
		}()
	}
	return next
}

// collectResults returns r and the results of other workers ready to be
// received now (at most running in all), without waiting: they are
// persisted together.
func collectResults(r pullResult, results <-chan pullResult, running int) []pullResult {
	rs := []pullResult{r}
	for len(rs) < running {
		select {
		case r := <-results:
			rs = append(rs, r)
		default:
			return rs
		}
	}
	return rs
}

// finish records workers' outcomes: the complete partitions of the
// current change are persisted, in one write of the transfers file, then
// reported done; failed ones wait Retry. Profiled while a new cluster
// formed, a write and fsync of the file per partition (thousands of
// empty ones) was a sixth of a joining node's CPU; the workers that
// finish during one write are persisted by the next, together.
func (p *Puller) finish(rs []pullResult) {
	var pulled, failed []pullResult
	p.mu.Lock()
	for _, r := range rs {
		r.w.parts[r.part].running = false
		switch {
		case r.w != p.work:
		case r.err == nil:
			pulled = append(pulled, r)
		default:
			failed = append(failed, r)
			p.log.Debug("partition incomplete; retrying", "epoch", r.w.epoch, "partition", r.part, "retry", p.cfg.Retry, "err", r.err)
		}
	}
	p.mu.Unlock()
	if len(pulled) > 0 {
		if err := p.persist(pulled); err != nil {
			p.failures.Add(int64(len(pulled)))
			p.log.Error("cannot record pulled partitions; pulling them again", "partitions", len(pulled), "err", err)
			failed = append(failed, pulled...)
		} else {
			p.markDone(pulled)
		}
	}
	p.mu.Lock()
	for _, r := range failed {
		r.w.parts[r.part].retryAt = time.Now().Add(p.cfg.Retry)
	}
	p.mu.Unlock()
}

// markDone reports persisted partitions of the current change done.
func (p *Puller) markDone(pulled []pullResult) {
	w := pulled[0].w
	p.mu.Lock()
	for _, r := range pulled {
		r.w.parts[r.part].done = true
	}
	left := 0
	for _, q := range w.parts {
		if !q.done {
			left++
		}
	}
	p.mu.Unlock()
	for _, r := range pulled {
		p.log.Debug("partition pulled", "epoch", r.w.epoch, "partition", r.part, "left", left)
	}
	if left == 0 {
		p.log.Info("every pending partition pulled", "epoch", w.epoch, "partitions", len(w.order))
	}
}

// persist writes the done partitions of the current change plus those
// pulled (all of that change) to TransfersFile. Only Run calls it, so
// writes never race.
func (p *Puller) persist(pulled []pullResult) error {
	if p.cfg.Dir == "" {
		return nil
	}
	w := pulled[0].w
	p.mu.Lock()
	now := make(map[int]bool, len(pulled))
	for _, r := range pulled {
		now[r.part] = true
	}
	st := transferState{Epoch: w.epoch, PlanHash: w.hash}
	for _, q := range w.order {
		if w.parts[q].done || now[q] {
			st.Done = append(st.Done, int32(q))
		}
	}
	p.mu.Unlock()
	return saveTransfers(p.cfg.FS, p.cfg.Dir, p.cfg.Self, st)
}

// Progress answers KindStatus: the change being worked on and,
// ascending, its partitions this node holds a full copy of (persisted
// before they are listed). Before Run saw a placement it reports the
// current placement's plan with nothing done.
func (p *Puller) Progress() (epoch, planHash uint64, done []int32) {
	p.mu.Lock()
	if w := p.work; w != nil {
		for _, part := range w.order {
			if w.parts[part].done {
				done = append(done, int32(part))
			}
		}
		p.mu.Unlock()
		return w.epoch, w.hash, done
	}
	p.mu.Unlock()
	if pl := p.cfg.Placement(); pl != nil {
		return pl.Epoch(), pl.PlanHash(), nil
	}
	return 0, 0, nil
}

// Stats returns a snapshot of the puller's progress.
func (p *Puller) Stats() PullStats {
	s := PullStats{Keys: p.keys.Load(), Bytes: p.bytes.Load(), NewBytes: p.newBytes.Load(), Failures: p.failures.Load()}
	p.rateMu.Lock()
	s.Rate = p.rate
	p.rateMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.work
	if w == nil {
		return s
	}
	s.Epoch = w.epoch
	for _, part := range w.order {
		ps := w.parts[part]
		switch {
		case ps.done:
			s.Done++
			continue
		case ps.running:
			s.InFlight++
		default:
			s.Pending++
		}
		for _, ss := range ps.sources {
			if !ss.finished {
				s.BytesLeft += max(0, ss.total-ss.received)
			}
		}
	}
	return s
}
