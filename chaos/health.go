package chaos

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// FaultDegraded marks a stretch of a run during which some node that
// should run was down, frozen or not serving, or some serving node saw a
// member as not alive. The failure detectors then disagree or lag, so a
// coordinator may take stand-ins (sloppy quorum) and a read may miss a
// write that stand-ins acknowledged: stale reads inside such a window are
// counted apart from violations. Run records these windows itself.
const FaultDegraded FaultKind = "degraded"

// healthPoll is how often a run looks at every node's view of the others.
const healthPoll = 300 * time.Millisecond

// health records the degraded stretches of a run and the latest view for
// progress lines.
type health struct {
	mu      sync.Mutex // guards every field
	done    []FaultWindow
	since   time.Time     // start of the current degraded stretch; zero if healthy
	healthy time.Time     // when the last poll that found no problem began
	problem string        // the first problem seen in the last poll
	exited  chan struct{} // closed when the watch has ended
}

// watchHealth polls the cluster until ctx ends; the degraded windows are
// complete once ctx is done and the goroutine has seen it.
func watchHealth(ctx context.Context, c *Cluster) *health {
	h := &health{exited: make(chan struct{})}
	h.poll(ctx, c)
	go func() {
		defer close(h.exited)
		t := time.NewTicker(healthPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				h.close(time.Now())
				return
			case <-t.C:
				h.poll(ctx, c)
			}
		}
	}()
	return h
}

// poll looks at the cluster once. A degraded stretch is taken to begin
// when the last healthy poll began: the fault happened at some time after
// that, and a poll can take seconds when a node does not answer.
func (h *health) poll(ctx context.Context, c *Cluster) {
	began := time.Now()
	probs := healthProblems(ctx, c)
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problem = ""
	if len(probs) > 0 {
		h.problem = probs[0]
		if h.since.IsZero() {
			h.since = h.healthy
			if h.since.IsZero() {
				h.since = began
			}
		}
		return
	}
	h.healthy = began
	if !h.since.IsZero() {
		h.done = append(h.done, FaultWindow{Kind: FaultDegraded, Start: h.since, End: now})
		h.since = time.Time{}
	}
}

func (h *health) close(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.since.IsZero() {
		h.done = append(h.done, FaultWindow{Kind: FaultDegraded, Start: h.since, End: now, Detail: "still degraded when the faults ended"})
		h.since = time.Time{}
	}
}

// windows waits for the watch to end and returns the degraded stretches.
func (h *health) windows() []FaultWindow {
	<-h.exited
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.done)
}

func (h *health) status() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.problem
}

// healthProblems lists what keeps the cluster from full health now: a
// member not serving, a member a serving node does not see alive and
// joined, a node that cannot be read.
func healthProblems(ctx context.Context, c *Cluster) []string {
	members := c.members()
	serving := c.servingNames()
	var probs []string
	for _, m := range members {
		if !slices.Contains(serving, m) {
			probs = append(probs, m+" not serving")
		}
	}
	views := c.views(ctx, serving, nil)
	for _, name := range serving {
		v := views[name]
		if v.err != nil {
			probs = append(probs, fmt.Sprintf("%s unreadable", name))
			continue
		}
		for _, m := range v.members {
			if slices.Contains(members, m.Name) && (m.Liveness != "alive" || m.Status != "joined") {
				probs = append(probs, fmt.Sprintf("%s sees %s %s/%s", name, m.Name, m.Liveness, m.Status))
			}
		}
	}
	return probs
}

// progress writes one line per second until ctx ends: elapsed time,
// operations per second, errors, and what is down or cut off.
func progress(ctx context.Context, w io.Writer, c *Cluster, wl *Workload, h *health) {
	if w == nil {
		return
	}
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last Counts
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := wl.Counts()
		line := fmt.Sprintf("%4ds  %5d ops/s  ok %d  failed %d  unknown %d", int(time.Since(start).Seconds()),
			now.Ops-last.Ops, now.OK, now.Failed, now.Unknown)
		last = now
		var down []string
		serving := c.servingNames()
		for _, m := range c.members() {
			if !slices.Contains(serving, m) {
				down = append(down, m)
			}
		}
		if len(down) > 0 {
			line += "  down: " + strings.Join(down, ",")
		}
		if cuts := c.Cuts(); len(cuts) > 0 {
			line += "  cut: " + strings.Join(cuts, "; ")
		}
		if p := h.status(); p != "" && len(down) == 0 {
			line += "  degraded: " + p
		}
		fmt.Fprintln(w, line)
	}
}
