package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// settlePoll is how often Settle looks at the nodes.
const settlePoll = 500 * time.Millisecond

// Settle waits, after the faults healed, until the cluster has converged
// as far as its nodes can tell: every member runs and serves; each sees
// every member alive and joined and follows the same stable plan of
// exactly the members with nothing left to copy; no node holds a hint;
// and on every node every partition had a full anti-entropy round that
// began after Settle was called, so R=all reads that follow see the
// repaired data. Bounded by ctx; on timeout the error names what had not
// settled.
func Settle(ctx context.Context, c *Cluster) error {
	since := time.Now()
	want := slices.Sorted(slices.Values(c.members()))
	c.mu.Lock()
	var down []string
	for _, n := range c.nodes {
		if n.started && !n.left && (n.proc == nil || n.frozen) {
			down = append(down, n.name)
		}
	}
	c.mu.Unlock()
	if len(down) > 0 {
		// Hints for a node that is down are never delivered: waiting
		// cannot help.
		return fmt.Errorf("chaos: settle: %s down or frozen", strings.Join(down, ", "))
	}
	if len(want) == 0 {
		return errors.New("chaos: settle: no node runs")
	}
	var last []string
	err := pollUntil(ctx, settlePoll, "the cluster to settle", func() error {
		views := c.views(ctx, want, want)
		last = settleProblems(want, since, views)
		return firstProblem(last)
	})
	if err != nil {
		return fmt.Errorf("chaos: the cluster did not settle (%w): %s", ctx.Err(), summarize(last, 12))
	}
	return nil
}

// nodeView is what one node said about the cluster in one poll.
type nodeView struct {
	err     error // the node could not be read
	members []memberJSON
	stats   statsJSON
	aae     []aaePartitionJSON // read only when asked for
}

// views reads the members and stats of every named node in parallel, and
// the anti-entropy state of those also in aae.
func (c *Cluster) views(ctx context.Context, names, aae []string) map[string]nodeView {
	out := make(map[string]nodeView, len(names))
	var mu sync.Mutex // guards out
	var wg sync.WaitGroup
	for _, name := range names {
		addr := c.HTTP(name)
		wg.Go(func() {
			var v nodeView
			v.err = getJSON(ctx, addr, "/v1/members", maxAnswerBytes, &v.members)
			if v.err == nil {
				v.err = getJSON(ctx, addr, "/v1/stats", maxAnswerBytes, &v.stats)
			}
			if v.err == nil && slices.Contains(aae, name) {
				v.err = getJSON(ctx, addr, "/v1/aae", maxAAEBytes, &v.aae)
			}
			mu.Lock()
			out[name] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// stableProblems lists why the views of want (sorted names) do not show a
// formed cluster of exactly want: each node sees every other alive and
// joined, follows the same stable plan of want, and copies nothing.
func stableProblems(want []string, views map[string]nodeView) []string {
	var probs []string
	var epoch uint64
	epochOf := ""
	for _, name := range want {
		v, ok := views[name]
		switch {
		case !ok:
			probs = append(probs, name+": not read")
			continue
		case v.err != nil:
			probs = append(probs, fmt.Sprintf("%s: %v", name, v.err))
			continue
		case v.stats.Node != name:
			probs = append(probs, fmt.Sprintf("%s: GET /v1/stats answered for %q", name, v.stats.Node))
			continue
		}
		for _, other := range want {
			i := slices.IndexFunc(v.members, func(m memberJSON) bool { return m.Name == other })
			switch {
			case i < 0:
				probs = append(probs, fmt.Sprintf("%s does not list %s", name, other))
			case v.members[i].Liveness != "alive" || v.members[i].Status != "joined":
				probs = append(probs, fmt.Sprintf("%s sees %s %s and %s", name, other, v.members[i].Liveness, v.members[i].Status))
			}
		}
		p := v.stats.Plan
		switch {
		case len(p.Target) > 0:
			probs = append(probs, fmt.Sprintf("%s: change in progress from %v to %v", name, p.Members, p.Target))
		case !slices.Equal(slices.Sorted(slices.Values(p.Members)), want):
			probs = append(probs, fmt.Sprintf("%s: plan members %v, want %v", name, p.Members, want))
		case epochOf != "" && p.Epoch != epoch:
			probs = append(probs, fmt.Sprintf("%s follows plan epoch %d, %s %d", name, p.Epoch, epochOf, epoch))
		}
		if epochOf == "" {
			epoch, epochOf = p.Epoch, name
		}
		if t := v.stats.Transfer; t.Pending+t.InFlight > 0 {
			probs = append(probs, fmt.Sprintf("%s: %d partitions left to copy", name, t.Pending+t.InFlight))
		}
	}
	return probs
}

// settleProblems is stableProblems plus, on every node of want: no hint
// held, and a full anti-entropy round of every partition begun after
// since.
func settleProblems(want []string, since time.Time, views map[string]nodeView) []string {
	probs := stableProblems(want, views)
	for _, name := range want {
		v, ok := views[name]
		if !ok || v.err != nil {
			continue // reported above
		}
		switch {
		case v.stats.Hints == nil:
			probs = append(probs, name+": GET /v1/stats has no hints object")
		case v.stats.Hints.Pending > 0:
			probs = append(probs, fmt.Sprintf("%s holds %d hints", name, v.stats.Hints.Pending))
		}
		probs = append(probs, aaeProblems(name, since, v)...)
	}
	return probs
}

// aaeProblems says why v (read with its anti-entropy state) does not show
// a full anti-entropy round of every partition begun after since.
func aaeProblems(name string, since time.Time, v nodeView) []string {
	if v.err != nil {
		return []string{fmt.Sprintf("%s: %v", name, v.err)}
	}
	if v.stats.AAE == nil {
		return []string{name + ": anti-entropy is off (aae.interval 0s): nothing repairs what hints missed"}
	}
	if len(v.aae) == 0 {
		return []string{name + ": GET /v1/aae lists no partition"}
	}
	behind, first := 0, ""
	for _, p := range v.aae {
		at, err := time.Parse(time.RFC3339Nano, p.LastFull)
		if p.LastFull != "" && err == nil && at.After(since) {
			continue
		}
		if behind == 0 {
			first = fmt.Sprintf("partition %d last full round %q", p.Partition, p.LastFull)
			if p.LastError != "" {
				first += ", last error " + p.LastError
			}
		}
		behind++
	}
	if behind == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s: %d of %d partitions without a full anti-entropy round since %s (%s)",
		name, behind, len(v.aae), since.Format(time.RFC3339Nano), first)}
}

// firstProblem is nil for no problems, else an error listing a few.
func firstProblem(probs []string) error {
	if len(probs) == 0 {
		return nil
	}
	return errors.New(summarize(probs, 5))
}

// summarize joins up to n problems and says how many more there were.
func summarize(probs []string, n int) string {
	if len(probs) == 0 {
		return "no problem seen (the nodes were not read)"
	}
	if len(probs) <= n {
		return strings.Join(probs, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(probs[:n], "; "), len(probs)-n)
}
