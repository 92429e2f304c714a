package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/spf13/cobra"
)

// Membership changes: leave and remove, and the plan and transfer
// progress that ring, ring --watch and leave show.

// leavePoll is how often leave looks at the leaving node's progress.
const leavePoll = time.Second

func (a *app) leaveCmd() *cobra.Command {
	var o clientOpts
	var noWait bool
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make the node given by --node hand its data off, leave the ring and stop",
		Long: `Ask the node given by --node to leave the ring for good. Its partitions get
new replicas, which copy them from the replicas that hold them (this node
included) while the node keeps serving; once every new replica holds a full
copy the change is committed, the node drops its data, records that it left
and stops by itself.

leave prints progress until the node has stopped (Ctrl-C stops watching, not
the leave); --no-wait returns as soon as the leave has started. Stopping a
node (SIGTERM) does not leave the ring; this does.`,
		Args: exactArgs(0, "no arguments (the node is --node)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ok, err := c.Leave(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.printOK(o.json, ok); err != nil || noWait {
				return err
			}
			return a.waitLeft(cmd.Context(), c, o.json)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the leave has started instead of waiting until the node has stopped")
	return cmd
}

// waitLeft polls the leaving node's ring view and prints progress until the
// node no longer answers (it stopped after leaving) or ctx ends.
func (a *app) waitLeft(ctx context.Context, c *client.Client, quiet bool) error {
	tick := time.NewTicker(leavePoll)
	defer tick.Stop()
	last := ""
	gone := 0
	for {
		rj, err := c.Ring(ctx)
		var ae *client.Error
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("stopped waiting; the leave goes on: %w", ctx.Err())
		case errors.As(err, &ae):
			return err
		case err != nil:
			// The node stopped answering: it left and exited (three
			// failures in a row, so that one slow answer is not taken
			// for it).
			if gone++; gone < 3 {
				break
			}
			if !quiet {
				fmt.Fprintln(a.stdout, "the node has left the ring and stopped")
			}
			return nil
		default:
			gone = 0
			if line := leaveLine(rj); line != last && !quiet {
				fmt.Fprintln(a.stdout, line)
				last = line
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// leaveLine sums up a leave in progress in one line.
func leaveLine(rj client.Ring) string {
	if rj.Plan == nil {
		return "waiting for the plan"
	}
	if rj.Plan.Target == nil {
		return fmt.Sprintf("plan %d: serving %s; waiting for the change to start or for the node to finish", rj.Plan.Epoch, strings.Join(rj.Plan.Members, " "))
	}
	pending, done, left := transferTotals(rj)
	return fmt.Sprintf("plan %d: moving to %s; partitions copied %d of %d, about %s left",
		rj.Plan.Epoch, strings.Join(rj.Plan.Target, " "), done, done+pending, humanBytes(left))
}

// transferTotals sums the nodes' progress for the plan's epoch.
func transferTotals(rj client.Ring) (pending, done int, bytesLeft int64) {
	for _, t := range rj.Transfers {
		if rj.Plan != nil && t.Epoch != rj.Plan.Epoch {
			continue
		}
		pending += t.Pending + t.InFlight
		done += t.Done
		bytesLeft += t.BytesLeft
	}
	return pending, done, bytesLeft
}

func (a *app) removeCmd() *cobra.Command {
	var o clientOpts
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove a node that is gone for good from the ring",
		Long: `Remove NODE from the ring, for a node that will not come back (use "leave" on
a node that is still running). Any live node (--node) can do it.

The partitions NODE replicated get new replicas, which copy them from the
surviving replicas; until that is done the survivors serve them. Watch the
progress with "ringkv ring --watch 2s".`,
		Args: exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ok, err := c.Remove(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printOK(o.json, ok)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// printRing prints the inspection, then the plan and the transfers.
func (a *app) printRing(rj client.Ring) error {
	if err := a.printInspection(rj); err != nil {
		return err
	}
	return printPlan(a.stdout, rj, false)
}

// printPlan prints the plan line and, during a change or while any node
// has work left, one row per node of transfer progress.
func printPlan(w io.Writer, rj client.Ring, bars bool) error {
	p := rj.Plan
	if p == nil {
		_, err := fmt.Fprintln(w, "plan: none known yet (the node has not joined a cluster)")
		return err
	}
	if p.Target == nil {
		fmt.Fprintf(w, "plan %d: stable, serving %s\n", p.Epoch, strings.Join(p.Members, " "))
	} else {
		fmt.Fprintf(w, "plan %d: moving from %s\n        to %s\n", p.Epoch, strings.Join(p.Members, " "), strings.Join(p.Target, " "))
	}
	names := make([]string, 0, len(rj.Transfers))
	busy := false
	for name, t := range rj.Transfers {
		names = append(names, name)
		busy = busy || t.Pending+t.InFlight > 0
	}
	if p.Target == nil && !busy {
		return nil
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPENDING\tIN FLIGHT\tDONE\tKEYS IN\tBYTES IN\tLEFT\tBYTES OUT\tRATE\t")
	for _, name := range names {
		t := rj.Transfers[name]
		if t.Epoch != p.Epoch {
			t.Pending, t.InFlight, t.Done, t.BytesLeft = 0, 0, 0, 0
		}
		rate := "unlimited"
		if t.RateBytes > 0 {
			rate = humanBytes(int64(t.RateBytes)) + "/s"
		}
		bar := ""
		if bars {
			bar = progressBar(t.Done, t.Done+t.Pending+t.InFlight, 20)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", name, t.Pending, t.InFlight, t.Done,
			t.Keys, humanBytes(t.Bytes), humanBytes(t.BytesLeft), humanBytes(t.BytesSent), rate, bar)
	}
	return tw.Flush()
}

// progressBar draws done of total in width cells; a node with nothing to
// do shows a full bar.
func progressBar(done, total, width int) string {
	filled := width
	if total > 0 {
		filled = done * width / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// watchRing redraws the ring view every interval until ctx ends.
func (a *app) watchRing(ctx context.Context, c *client.Client, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		rj, err := c.Ring(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fmt.Fprint(a.stdout, "\033[H\033[2J") // home, clear screen
		fmt.Fprintf(a.stdout, "%s (every %s; Ctrl-C to stop)\n", time.Now().Format(time.TimeOnly), every)
		if err := a.printInspection(rj); err != nil {
			return err
		}
		if err := printPlan(a.stdout, rj, true); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
