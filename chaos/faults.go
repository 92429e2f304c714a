package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Scenario is a schedule of faults.
type Scenario struct {
	Name string
	// NeedsCuts: the scenario cuts the network, so the cluster needs IPs
	// and the network namespace.
	NeedsCuts bool
	// NeedsSpare is how many spare nodes (ClusterConfig.Spare) it starts.
	NeedsSpare int
	// Run injects faults until ctx is done (stopping about 5 s before its
	// deadline, so the last fault is healed in time), records one
	// FaultWindow per fault once it is healed, and returns with every
	// node that should run running and thawed and no cut left. rng
	// drives every random choice, so a seed replays the schedule (the
	// cluster's timing aside). record is called from Run's goroutine.
	Run func(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error
}

// Timings of the schedules.
const (
	// stopMargin is how long before ctx's deadline a scenario stops
	// injecting and has its last fault healed.
	stopMargin = 5 * time.Second
	// healLimit bounds a heal (a restart, a join, a leave) that runs on
	// after ctx ended.
	healLimit = 3 * time.Minute
	// cutFor is how long one isolation lasts.
	cutFor = 10 * time.Second
)

// Scenarios returns every scenario, by name: kill, freeze, isolate,
// isolate-minority, wipe, membership.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "kill", Run: withRestore(runKill)},
		{Name: "freeze", Run: withRestore(runFreeze)},
		{Name: "isolate", NeedsCuts: true, Run: withRestore(isolate(1))},
		{Name: "isolate-minority", NeedsCuts: true, Run: withRestore(isolate(2))},
		{Name: "wipe", Run: withRestore(runWipe)},
		{Name: "membership", NeedsSpare: 1, Run: withRestore(runMembership)},
	}
}

// ScenarioByName returns the named scenario.
func ScenarioByName(name string) (Scenario, error) {
	var names []string
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("chaos: no scenario %q (have %s)", name, strings.Join(names, ", "))
}

type runFunc = func(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error

// withRestore makes sure the cluster is whole when run returns, even
// after an error: cuts healed, frozen nodes thawed, every node that
// should run started.
func withRestore(run runFunc) runFunc {
	return func(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) (err error) {
		defer func() {
			hctx, cancel := healCtx(ctx)
			defer cancel()
			err = errors.Join(err, c.restore(hctx))
		}()
		return run(ctx, c, rng, record)
	}
}

// restore heals every cut, thaws every frozen node and starts every node
// that was started once, has not left, and is down.
func (c *Cluster) restore(ctx context.Context) error {
	errs := []error{c.Heal()}
	c.mu.Lock()
	var frozen, down []string
	for _, n := range c.nodes {
		switch {
		case n.proc != nil && n.frozen:
			frozen = append(frozen, n.name)
		case n.proc == nil && n.started && !n.left:
			down = append(down, n.name)
		}
	}
	c.mu.Unlock()
	for _, name := range frozen {
		errs = append(errs, c.Thaw(name))
	}
	for _, name := range down {
		errs = append(errs, c.Start(ctx, name))
	}
	return errors.Join(errs...)
}

// schedule paces a scenario: it ends when ctx does or at stopMargin
// before ctx's deadline.
type schedule struct {
	ctx  context.Context
	stop time.Time
}

func newSchedule(ctx context.Context) schedule {
	stop := time.Now().Add(100 * 365 * 24 * time.Hour)
	if d, ok := ctx.Deadline(); ok {
		stop = d.Add(-stopMargin)
	}
	return schedule{ctx: ctx, stop: stop}
}

// left is the time until the schedule ends.
func (s schedule) left() time.Duration {
	if s.ctx.Err() != nil {
		return 0
	}
	return max(0, time.Until(s.stop))
}

// pause waits d, cut short when the schedule ends; it reports whether
// the whole d passed.
func (s schedule) pause(d time.Duration) bool {
	whole := d <= s.left()
	t := time.NewTimer(min(d, s.left()))
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return whole && s.ctx.Err() == nil
	}
}

// between picks a duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// healCtx is for healing after ctx may have ended: not cancelled with
// ctx, bounded by healLimit.
func healCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), healLimit)
}

// pickServing picks a random serving node, or fails when fewer than
// need serve.
func pickServing(c *Cluster, rng *rand.Rand, need int) (string, []string, error) {
	names := c.servingNames()
	if len(names) < need {
		return "", nil, fmt.Errorf("chaos: %d nodes serve (%s), the scenario needs %d", len(names), strings.Join(names, ","), need)
	}
	return names[rng.IntN(len(names))], names, nil
}

// nodeFaults injects one single-node fault after another: a gap of
// [gapLo, gapHi), inject on a random serving node, hold it for [downLo,
// downHi) (cut short at the schedule's end), heal, record.
type nodeFaults struct {
	kind           FaultKind
	gapLo, gapHi   time.Duration
	downLo, downHi time.Duration
	inject         func(c *Cluster, name string) error
	heal           func(ctx context.Context, c *Cluster, name string) error
	// after, when not nil, runs after each heal (its window recorded),
	// bounded by the schedule: it waits for the cluster to recover.
	after func(ctx context.Context, c *Cluster, name string, healed time.Time) error
}

func (f nodeFaults) run(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
	s := newSchedule(ctx)
	for range 100000 {
		if !s.pause(between(rng, f.gapLo, f.gapHi)) {
			return nil
		}
		// A single-node fault needs a majority of replicas left.
		name, _, err := pickServing(c, rng, 2)
		if err != nil {
			return err
		}
		w := FaultWindow{Kind: f.kind, Nodes: []string{name}, Start: time.Now()}
		if err := f.inject(c, name); err != nil {
			return err
		}
		s.pause(between(rng, f.downLo, f.downHi))
		hctx, cancel := healCtx(ctx)
		err = f.heal(hctx, c, name)
		cancel()
		if err != nil {
			record(w)
			return err
		}
		w.End = time.Now()
		record(w)
		if f.after != nil {
			actx, cancel := context.WithDeadline(ctx, s.stop)
			err := f.after(actx, c, name, w.End)
			cancel()
			if err != nil && actx.Err() == nil {
				return err
			}
		}
	}
	return nil
}

// runKill: every 3-6 s SIGKILL a random node, restart it 2-5 s later.
func runKill(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
	return nodeFaults{
		kind:  FaultKill,
		gapLo: 3 * time.Second, gapHi: 6 * time.Second,
		downLo: 2 * time.Second, downHi: 5 * time.Second,
		inject: func(c *Cluster, name string) error { return c.Kill(name) },
		heal:   func(ctx context.Context, c *Cluster, name string) error { return c.Start(ctx, name) },
	}.run(ctx, c, rng, record)
}

// runFreeze: every 3-6 s SIGSTOP a random node, SIGCONT it 2-5 s later.
func runFreeze(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
	return nodeFaults{
		kind:  FaultFreeze,
		gapLo: 3 * time.Second, gapHi: 6 * time.Second,
		downLo: 2 * time.Second, downHi: 5 * time.Second,
		inject: func(c *Cluster, name string) error { return c.Freeze(name) },
		heal:   func(_ context.Context, c *Cluster, name string) error { return c.Thaw(name) },
	}.run(ctx, c, rng, record)
}

// runWipe: kill a random node, delete its data directory, start it 2-5 s
// later; before the next wipe wait until the restored node had a full
// anti-entropy round of every partition it replicates and the cluster is
// whole again, so no two wipes together destroy every copy of a key.
func runWipe(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
	return nodeFaults{
		kind:  FaultWipe,
		gapLo: 3 * time.Second, gapHi: 6 * time.Second,
		downLo: 2 * time.Second, downHi: 5 * time.Second,
		inject: func(c *Cluster, name string) error {
			if err := c.Kill(name); err != nil {
				return err
			}
			return c.Wipe(name)
		},
		heal:  func(ctx context.Context, c *Cluster, name string) error { return c.Start(ctx, name) },
		after: waitRestored,
	}.run(ctx, c, rng, record)
}

// waitRestored waits until the members form a stable cluster and name had
// a full anti-entropy round of each of its partitions begun after since.
func waitRestored(ctx context.Context, c *Cluster, name string, since time.Time) error {
	want := slices.Sorted(slices.Values(c.members()))
	return pollUntil(ctx, settlePoll, name+" restored by anti-entropy", func() error {
		views := c.views(ctx, want, []string{name})
		probs := stableProblems(want, views)
		if v, ok := views[name]; ok {
			probs = append(probs, aaeProblems(name, since, v)...)
		}
		return firstProblem(probs)
	})
}

// isolate cuts size random nodes together off from every other node
// (both ways) for cutFor, heals, waits 2-5 s, and repeats. Each side
// keeps its own traffic.
func isolate(size int) runFunc {
	return func(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
		s := newSchedule(ctx)
		for range 100000 {
			if !s.pause(between(rng, 2*time.Second, 5*time.Second)) {
				return nil
			}
			names := c.servingNames()
			// The rest must stay a majority of the cluster.
			if len(names) < 2*size+1 {
				return fmt.Errorf("chaos: isolating %d nodes needs %d serving, have %d (%s)", size, 2*size+1, len(names), strings.Join(names, ","))
			}
			rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			cut := slices.Sorted(slices.Values(names[:size]))
			rest := slices.Sorted(slices.Values(names[size:]))
			w := FaultWindow{
				Kind:   FaultCut,
				Nodes:  cut,
				Detail: strings.Join(cut, ",") + " <-/-> " + strings.Join(rest, ","),
				Start:  time.Now(),
			}
			if err := c.Cut(cut, rest, false); err != nil {
				return errors.Join(err, c.Heal())
			}
			s.pause(cutFor)
			if err := c.Heal(); err != nil {
				record(w)
				return err
			}
			w.End = time.Now()
			record(w)
		}
		return nil
	}
}

// runMembership starts a spare node (it joins with every node as a seed)
// and waits until the cluster is stable with it; then a random other node
// leaves, and the cluster is waited on again. The windows last until each
// change is over. Then it waits for the schedule's end.
func runMembership(ctx context.Context, c *Cluster, rng *rand.Rand, record func(FaultWindow)) error {
	s := newSchedule(ctx)
	if !s.pause(between(rng, 2*time.Second, 4*time.Second)) {
		return nil
	}
	spare := c.spare()
	if spare == "" {
		return errors.New("chaos: the membership scenario needs a spare node (ClusterConfig.Spare)")
	}
	hctx, cancel := healCtx(ctx)
	defer cancel()
	w := FaultWindow{Kind: FaultJoin, Nodes: []string{spare}, Start: time.Now()}
	err := c.Start(hctx, spare)
	if err == nil {
		err = c.waitStable(hctx, slices.Sorted(slices.Values(c.members())))
	}
	if err != nil {
		record(w)
		return fmt.Errorf("chaos: %s joining: %w", spare, err)
	}
	w.End = time.Now()
	record(w)

	// A leave copies about a node's share of the data; do not start one
	// that cannot finish near the schedule's end.
	if !s.pause(between(rng, 3*time.Second, 5*time.Second)) || s.left() < 20*time.Second {
		return nil
	}
	names := slices.DeleteFunc(c.servingNames(), func(n string) bool { return n == spare })
	if len(names) == 0 {
		return errors.New("chaos: no node but the new one serves")
	}
	leaver := names[rng.IntN(len(names))]
	w = FaultWindow{Kind: FaultLeave, Nodes: []string{leaver}, Start: time.Now()}
	err = c.Leave(hctx, leaver)
	if err == nil {
		err = c.waitStable(hctx, slices.Sorted(slices.Values(c.members())))
	}
	if err != nil {
		record(w)
		return fmt.Errorf("chaos: %s leaving: %w", leaver, err)
	}
	w.End = time.Now()
	record(w)
	s.pause(s.left())
	return nil
}

// spare returns a node never started, "" if none is left.
func (c *Cluster) spare() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if !n.started && n.proc == nil {
			return n.name
		}
	}
	return ""
}
