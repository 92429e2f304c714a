package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// Coordinator runs quorum reads and writes for one node and serves the
// internal calls other nodes' coordinators make to it. It is safe for
// concurrent use.
type Coordinator struct {
	cfg  Config
	log  *slog.Logger
	bg   tracker // background work: write stragglers, read repairs
	life context.Context
	stop context.CancelFunc
	// closed is set by Close; requests after it fail with ErrClosed.
	closed atomic.Bool
	stats  stats
	// fence orders placement swaps (Fence holds it for writing) against
	// the stores and local writes that apply data under a placement (they
	// hold it for reading from reading the placement through the local
	// apply); see Fence.
	fence sync.RWMutex
	// maxEpoch is the highest plan epoch a request served here carried.
	maxEpoch atomic.Uint64
	// hedgeTimers holds stopped *time.Timer for reads' speculative
	// retries (readRun.collect): a timer per read was three allocations.
	hedgeTimers sync.Pool
}

var _ Handler = (*Coordinator)(nil)

// ReadOptions tunes one read.
type ReadOptions struct {
	// R is the read quorum; QuorumDefault uses Config.DefaultR.
	R Quorum
}

// WriteOptions tunes one put or delete.
type WriteOptions struct {
	// W is the write quorum; QuorumDefault uses Config.DefaultW.
	W Quorum
	// Context is the causal context the client read, used when HasContext.
	Context vclock.Clock
	// HasContext false is a blind write: a Put supersedes whatever the
	// coordinator holds for the key at that moment (last-writer semantics
	// for clients that never pass a context); a Delete first reads at R
	// and supersedes what that read returns.
	HasContext bool
	// Strict turns sloppy quorum off for this write: stand-ins holding
	// hints for down replicas do not count toward W.
	Strict bool
	// R is the read quorum of the read a Delete without a context does
	// first; QuorumDefault uses Config.DefaultR. Put ignores it.
	R Quorum
}

// Result is the answer to a read or write.
type Result struct {
	// Siblings is the merged set: of the replies (read) or the
	// coordinator's set after the write. It may contain tombstones; callers
	// show only Live(), and a key with no live sibling is not found.
	Siblings vclock.Siblings
	// Replies is how many replicas answered (read) or acknowledged (write),
	// the coordinator included, when the request was answered; during a
	// membership change the pending replicas asked are counted too.
	Replies int
	// Hinted is how many of a write's Replies were stand-ins keeping a
	// hint for a down replica (sloppy quorum).
	Hinted int
}

// Context returns the causal context of Siblings: a write carrying it
// supersedes every version in Siblings. It is computed on each call
// (three allocations for a one-version set), so callers that do not hand
// a context to their client, as the Redis protocol does not, skip it.
func (r Result) Context() vclock.Clock { return r.Siblings.Context() }

// New returns a Coordinator. Zero values of N, DefaultR, DefaultW,
// Timeout, Now, TransferBatchBytes and Logger get their defaults;
// ReadRepair is taken as given (DefaultConfig sets it).
func New(cfg Config) (*Coordinator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	life, stop := context.WithCancel(context.Background())
	return &Coordinator{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "replica", "node", cfg.Self),
		life: life,
		stop: stop,
	}, nil
}

// Drain waits until the background work started so far (sends to replicas
// that had not acknowledged when a write was answered, read repairs) has
// finished, or ctx ends. That work is bounded by each request's deadline.
func (c *Coordinator) Drain(ctx context.Context) error { return c.bg.Wait(ctx) }

// Close makes new requests fail with ErrClosed, cancels background work
// and waits for it to stop. It does not close the Transport or Store,
// which the caller owns.
func (c *Coordinator) Close() error {
	c.closed.Store(true)
	c.stop()
	return c.bg.Wait(context.Background())
}

// Handle serves an internal call from another node: store a sibling set
// (or a hint), read a key's set, coordinate a forwarded write, serve a
// batch of a partition to a new replica, say which plan this node
// follows, or answer a peer's anti-entropy exchange (aae_serve.go).
func (c *Coordinator) Handle(ctx context.Context, from string, req Request) (Response, error) {
	if c.closed.Load() {
		return Response{}, ErrClosed
	}
	switch req.Kind {
	case KindPing:
		return Response{}, nil
	case KindRead:
		return c.handleRead(req)
	case KindStore:
		return Response{}, c.handleStore(ctx, req)
	case KindHandoff:
		return Response{}, c.handleHandoff(ctx, from, req)
	case KindForward:
		if err := c.checkForward(req); err != nil {
			return Response{}, err
		}
		c.seeEpoch(req.Epoch)
		c.stats.forwardsServed.Add(1)
		op := "put"
		if req.Write.Delete {
			op = "delete"
		}
		res, err := c.write(ctx, op, req.Key, req.Write, true)
		if err != nil {
			return Response{}, err
		}
		return Response{Siblings: res.Siblings, Context: res.Context(), Replies: res.Replies, Hinted: res.Hinted}, nil
	case KindTransfer:
		return c.handleTransfer(ctx, from, req)
	case KindStatus:
		return c.handleStatus(), nil
	case KindTree:
		return c.handleTree(req)
	case KindKeys:
		return c.handleKeys(req)
	case KindFetch:
		return c.handleFetch(req)
	}
	c.log.Debug("unknown request kind", "peer", from, "kind", uint8(req.Kind))
	return Response{}, fmt.Errorf("%w: %v from %s", ErrUnknownKind, req.Kind, from)
}

// Fence runs swap, which installs a new placement (Config.Placement
// returns it from then on), at a moment when no store and no local write
// is between reading the placement and applying its data here. So once
// Fence returns, every set stored, and every write coordinated, under the
// old placement is in the local store, and every later one reads the new
// placement.
//
// This is what makes a partition transfer complete (docs: TRANSFER.md,
// section 3): a source serves a pull for a plan only once it follows that
// plan, which it installs through Fence. A write it applied under the old
// plan was not sent to the new replica, but it is in the store the pull
// scans; a store it applies after the swap from a sender still on the old
// plan is passed on to the new replicas (stale-store forwarding). The lock
// is held only across local applies, never across a network call, so a
// swap waits at most for those. swap must not call into the Coordinator.
func (c *Coordinator) Fence(swap func()) {
	c.fence.Lock()
	defer c.fence.Unlock()
	swap()
}

// MaxEpochSeen returns the highest plan epoch carried by a store (not a
// hint), read or forward this node accepted (0 when none carried one). A
// node whose own plan is older than it is behind, and must not drop data
// on the strength of its plan. Other calls (ping, status, transfer,
// handoff) and malformed or refused requests do not count: their epoch
// says nothing about a plan that routes data here, and a forged huge one
// would block this node's drops for good.
func (c *Coordinator) MaxEpochSeen() uint64 { return c.maxEpoch.Load() }

// seeEpoch records the plan epoch of an accepted store, read or forward
// in maxEpoch.
func (c *Coordinator) seeEpoch(e uint64) {
	for {
		cur := c.maxEpoch.Load()
		if e <= cur || c.maxEpoch.CompareAndSwap(cur, e) {
			return
		}
	}
}

// handleRead serves a replica read, unless the sender routes by an older
// plan in which this node is no replica of the key.
func (c *Coordinator) handleRead(req Request) (Response, error) {
	if len(req.Key) == 0 {
		return Response{}, fmt.Errorf("%w: read without a key", ErrBadRequest)
	}
	if p := c.cfg.Placement(); p != nil {
		part := p.Partition(req.Key)
		if own := p.Epoch(); refuses(c.cfg.Self, p.Replicas(part), p.Pending(part), own, req.Epoch) {
			return Response{}, c.notReplica(part, own, req.Epoch)
		}
	}
	c.seeEpoch(req.Epoch)
	c.stats.readsServed.Add(1)
	return Response{Siblings: c.cfg.Store.Get(req.Key)}, nil
}

// checkForward validates a forwarded write before its epoch is believed:
// it needs a write, a key, a well-formed context and a quorum within 1..N.
// The coordination checks all of these again (it serves local writes too);
// checking here first keeps a malformed forward from raising MaxEpochSeen.
func (c *Coordinator) checkForward(req Request) error {
	fw := req.Write
	switch {
	case fw == nil:
		return fmt.Errorf("%w: forward without a write", ErrBadRequest)
	case len(req.Key) == 0:
		return fmt.Errorf("%w: forward without a key", ErrBadRequest)
	}
	if fw.HasContext {
		if err := fw.Context.Check(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	_, err := need(fw.W, c.cfg.DefaultW, c.cfg.N, c.cfg.N)
	return err
}

// notReplica is the refusal of a store or read from a sender with an
// older plan (or none), counted in Stats.StaleRefused.
func (c *Coordinator) notReplica(part int, own, sent uint64) error {
	c.stats.staleRefused.Add(1)
	return fmt.Errorf("%w: %s is not a replica of partition %d in plan epoch %d; sender follows epoch %d",
		ErrNotReplica, c.cfg.Self, part, own, sent)
}

func (c *Coordinator) handleStore(ctx context.Context, req Request) error {
	if len(req.Key) == 0 {
		return fmt.Errorf("%w: store without a key", ErrBadRequest)
	}
	// The set's shape was checked once, by UnmarshalRequest at the
	// transport; the store and the hint queue check what they keep.
	if req.HintFor != "" {
		if c.cfg.Hints == nil {
			return fmt.Errorf("%w: hint for %s", ErrNoHints, req.HintFor)
		}
		if !c.ringMember(req.Key, req.HintFor) {
			return fmt.Errorf("%w: hint for %q, which is not a ring member", ErrBadRequest, req.HintFor)
		}
		c.stats.hintsServed.Add(1)
		return c.cfg.Hints.StoreHint(ctx, req.HintFor, req.Key, req.Siblings)
	}
	pass, err := c.storeLocal(ctx, req)
	if err != nil || len(pass.to) == 0 {
		return err
	}
	return c.passOn(ctx, req.Key, pass)
}

// staleStore is a set applied here for a sender with an older plan, to
// pass on to the pending replicas of this node's plan, which that sender
// does not know of.
type staleStore struct {
	set   vclock.Siblings
	to    []string
	epoch uint64
}

// storeLocal applies a store under the fence (see Fence) after the stale
// check, and says whom to pass the result on to.
func (c *Coordinator) storeLocal(ctx context.Context, req Request) (staleStore, error) {
	c.fence.RLock()
	defer c.fence.RUnlock()
	var own uint64
	var pending []string
	if p := c.cfg.Placement(); p != nil {
		part := p.Partition(req.Key)
		own, pending = p.Epoch(), p.Pending(part)
		if refuses(c.cfg.Self, p.Replicas(part), pending, own, req.Epoch) {
			return staleStore{}, c.notReplica(part, own, req.Epoch)
		}
	}
	c.seeEpoch(req.Epoch)
	c.stats.storesServed.Add(1)
	merged, err := applyRemote(ctx, c.cfg.Store, req.Key, req.Siblings)
	if err != nil || req.Epoch >= own || len(pending) == 0 {
		return staleStore{}, err
	}
	return staleStore{set: merged, to: pending, epoch: own}, nil
}

// passOn sends a stale sender's store, as applied here, to the pending
// replicas (all at once) before the store is acknowledged: the sender
// counts this node's acknowledgement toward a quorum its plan computed
// without them, so the write must reach them too. Any failure fails the
// store, and the sender counts it as a failed replica.
func (c *Coordinator) passOn(ctx context.Context, key []byte, s staleStore) error {
	errs := make(chan error, len(s.to))
	asked := 0
	for _, n := range s.to {
		if n == c.cfg.Self {
			continue
		}
		asked++
		go func() {
			_, err := c.cfg.Transport.Call(ctx, n, Request{Kind: KindStore, Key: key, Siblings: s.set, Epoch: s.epoch})
			if err != nil {
				err = fmt.Errorf("stored on %s, but passing it on to pending replica %s failed: %w", c.cfg.Self, n, err)
			}
			errs <- err
		}()
	}
	if asked > 0 {
		c.stats.staleForwards.Add(1)
	}
	var failed []error
	for range asked {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// withDeadline gives ctx the configured per-request deadline unless it
// already has one.
func (c *Coordinator) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// requestCtx is the context a request waits under: ctx with the
// configured deadline (withDeadline), or, when ctx can never end (no
// deadline, no cancellation: the RESP front end's), bg itself, the
// request's detached context (see detached), which ends at the same
// deadline. One timer then serves the request and its background sends.
// A request waiting under bg must not let bg end before it has counted
// its answers.
func (c *Coordinator) requestCtx(ctx, bg context.Context) (context.Context, context.CancelFunc) {
	if ctx.Done() == nil {
		return bg, func() {}
	}
	return c.withDeadline(ctx)
}

// detached returns a context for work that outlives the answer to the
// client (stragglers, repairs): not canceled with the request, but bounded
// by its deadline and by Close. It derives from the coordinator's life,
// not from ctx, so it carries none of ctx's values (ringkv sets none):
// one context per request, where carrying them took a context that
// drops ctx's cancellation, a deadline on it and a hook on life, five
// allocations more on every read and write.
func (c *Coordinator) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(c.cfg.Timeout)
	}
	return context.WithDeadline(c.life, d)
}

// alive asks Liveness, treating a nil Liveness as "everyone is up".
func (c *Coordinator) alive(node string) bool {
	return c.cfg.Liveness == nil || c.cfg.Liveness.Alive(node)
}

// route is one request's view of a key's placement, all from one
// placement snapshot.
type route struct {
	part      int
	reps      []string // Replicas: serve reads, coordinate writes
	pending   []string // Pending: receive writes, answer reads, coordinate nothing yet
	targets   []string // Targets: the replicas after the change
	fallbacks []string // stand-ins for hinted handoff
	epoch     uint64   // the snapshot's plan epoch, stamped on requests
	// zoned is the snapshot as a ZonedPlacement; nil without zones. It
	// is the interface, not the bound method z.Zone: a method value
	// escapes to the heap, one allocation per request.
	zoned ZonedPlacement
}

// route reads the placement once and returns key's lists, and checks the
// key.
func (c *Coordinator) route(key []byte) (route, error) {
	if len(key) == 0 {
		return route{}, fmt.Errorf("%w: empty key", ErrBadRequest)
	}
	p := c.cfg.Placement()
	if p == nil {
		return route{}, fmt.Errorf("%w: no ring yet", ErrNoReplicas)
	}
	part := p.Partition(key)
	r := route{part: part, reps: p.Replicas(part)}
	if len(r.reps) == 0 {
		return route{}, ErrNoReplicas
	}
	r.pending, r.targets, r.fallbacks, r.epoch = p.Pending(part), p.Targets(part), p.Fallbacks(part), p.Epoch()
	if z, ok := p.(ZonedPlacement); ok && z.Zoned() {
		r.zoned = z
	}
	return r, nil
}

// epoch is the current placement's plan epoch, 0 without one.
func (c *Coordinator) epoch() uint64 {
	if p := c.cfg.Placement(); p != nil {
		return p.Epoch()
	}
	return 0
}

// reply is one replica's answer inside a fan-out.
type reply struct {
	node string
	set  vclock.Siblings
	err  error
	// via is the stand-in that kept a write's copy as a hint for node;
	// empty when node itself answered.
	via string
}

// callAsync runs one call for a fan-out, counted in c.bg until done has
// run: through the transport's AsyncCaller when it has one, so that no
// goroutine waits for the answer, else in a goroutine of its own. done
// must not block (see AsyncCaller).
func (c *Coordinator) callAsync(ctx context.Context, to string, req Request, done func(Response, error)) {
	if a, ok := c.cfg.Transport.(AsyncCaller); ok {
		c.bg.add()
		a.Go(ctx, to, req, func(resp Response, err error) {
			defer c.bg.done()
			done(resp, err)
		})
		return
	}
	c.bg.Go(func() { done(c.cfg.Transport.Call(ctx, to, req)) })
}

// tracker counts background goroutines so that Drain and Close can wait
// for them. Unlike sync.WaitGroup it allows Wait concurrently with Go
// from zero, and Wait takes a ctx.
type tracker struct {
	mu sync.Mutex // guards n and idle
	n  int        // running goroutines
	// idle is closed when n drops to 0; made by the first Wait while
	// n > 0, so that work nobody waits for allocates nothing.
	idle chan struct{}
}

// Go runs f in a new goroutine, counted until it returns.
func (t *tracker) Go(f func()) {
	t.add()
	go func() {
		defer t.done()
		f()
	}()
}

// add counts one piece of work that is not a goroutine of Go (an
// asynchronous call in flight) until done is called for it.
func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// Wait returns when no goroutine started by Go is running, or ctx ends.
func (t *tracker) Wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replica: waiting for background work: %w", ctx.Err())
	}
}

// running is the number of background goroutines.
func (t *tracker) running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}
