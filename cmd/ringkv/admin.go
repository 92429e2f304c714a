package main

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/node"
)

func (a *app) membersCmd() *cobra.Command {
	var o clientOpts
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List cluster members: addresses, liveness (gossip) and ring status",
		Long: `List the cluster members as the node given by --node sees them.

LIVENESS is what gossip says now (alive, suspect, dead); STATUS is ring
membership: joining (started with seeds; its partitions are being copied
to it), joined, leaving (handing its partitions off), left, removed. Only
starting a node, "leave" and "remove" change it: a crashed node stays
joined and its writes go to stand-ins as hints. HINTS counts the hints the
answering node holds for each member.

During a membership change (or while any node still has partitions to
copy), TRANSFER shows each node's partition copies: done of all it must
pull, how many are in flight, and the bytes estimated left. "ringkv ring"
shows the same progress in more detail.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			members, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return a.printJSON(members)
			}
			// Transfer progress comes from the ring view, which asks every
			// node; without it the member list is still worth printing.
			rj, err := c.Ring(cmd.Context())
			if err != nil {
				fmt.Fprintf(a.stderr, "transfer progress unavailable: %v\n", err)
				return a.printMembers(members, nil)
			}
			return a.printMembers(members, transferColumn(rj))
		},
	}
	o.addFlags(cmd)
	return cmd
}

// printMembers prints one row per member; transfer, when not nil, adds a
// TRANSFER column from it (a node it does not name shows "-").
func (a *app) printMembers(members []client.Member, transfer map[string]string) error {
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	zoned := slices.ContainsFunc(members, func(m client.Member) bool { return m.Zone != "" })
	head := "NAME\tLIVENESS\tSTATUS\tHTTP\tRESP\tRPC\tGOSSIP\tHINTS"
	if zoned {
		head = "NAME\tZONE" + strings.TrimPrefix(head, "NAME")
	}
	if transfer != nil {
		head += "\tTRANSFER"
	}
	fmt.Fprintln(tw, head)
	for _, m := range members {
		name := m.Name
		if zoned {
			name += "\t" + cmp.Or(m.Zone, "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d (%s)",
			name, m.Liveness, m.Status, m.HTTP, m.RESP, m.RPC, m.Gossip, m.PendingHints, humanBytes(m.PendingHintBytes))
		if transfer != nil {
			t, ok := transfer[m.Name]
			if !ok {
				t = "-"
			}
			fmt.Fprintf(tw, "\t%s", t)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// transferColumn is the TRANSFER cell per node while a change is in
// progress or any node has copies left, and nil when all is still (the
// column is then left out). Progress reported for an older plan than the
// current one counts as nothing to do, as in "ringkv ring".
func transferColumn(rj client.Ring) map[string]string {
	busy := rj.Plan != nil && rj.Plan.Target != nil
	out := make(map[string]string, len(rj.Transfers))
	for name, t := range rj.Transfers {
		if rj.Plan != nil && t.Epoch != rj.Plan.Epoch {
			t.Pending, t.InFlight, t.Done, t.BytesLeft = 0, 0, 0, 0
		}
		busy = busy || t.Pending+t.InFlight > 0
		out[name] = fmt.Sprintf("%d/%d done, %d in flight, %s left",
			t.Done, t.Done+t.Pending+t.InFlight, t.InFlight, humanBytes(t.BytesLeft))
	}
	if !busy {
		return nil
	}
	return out
}

// ringFlags are the flags of "ringkv ring" that pick what it shows.
type ringFlags struct {
	key, whatIf, zone string
	watch             time.Duration
	aae               bool
}

func (a *app) ringCmd() *cobra.Command {
	var o clientOpts
	var f ringFlags
	cmd := &cobra.Command{
		Use:   "ring [--key KEY | --what-if add:NAME|remove:NAME | --aae]",
		Short: "Inspect the ring: ownership per node, a key's replicas, or what a change would move",
		Long: `Without flags, print per node: partitions owned (first replica of), partitions
replicated (stored, owned included), share of the key space, and the keys and
bytes the node holds; then the plan (the serving members and, during a
membership change, the members the data is moving to) and each node's
transfer progress.

--watch 2s redraws that view every 2 seconds with progress bars.

--key KEY prints the key's partition, its preference list (the N replicas,
owner first) and the fallbacks that take hints when replicas are down.

--what-if add:NAME or remove:NAME (also "--what-if add NAME") prints which
partitions and roughly how many bytes would move if that node joined or left:
the capacity-planning view. Nothing changes in the cluster.

--aae prints the anti-entropy state of the node asked (--node), one row per
partition it replicates: its replicas, when every exchange with them last
completed in one pass, the keys repaired since the node started, and whether
the replicas' hash trees matched at the last exchanges.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				// "--what-if add NAME": the flag took "add", NAME came as
				// an argument.
				if f.whatIf != "add" && f.whatIf != "remove" {
					return usageError("ring takes no arguments, got %q (did you mean --what-if add %s?)", args[0], args[0])
				}
				f.whatIf += ":" + args[0]
			}
			if err := f.check(o.json); err != nil {
				return err
			}
			return a.runRing(cmd.Context(), &o, f)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&f.key, "key", "", "print the preference list of this key")
	cmd.Flags().StringVar(&f.whatIf, "what-if", "", "add:NAME or remove:NAME: print what would move")
	cmd.Flags().StringVar(&f.zone, "zone", "", "with --what-if add: the zone of the added node")
	cmd.Flags().DurationVar(&f.watch, "watch", 0, "redraw every INTERVAL (e.g. 2s) with transfer progress bars, until interrupted")
	cmd.Flags().BoolVar(&f.aae, "aae", false, "print the node's anti-entropy state per partition")
	return cmd
}

// check refuses flags that cannot be combined.
func (f ringFlags) check(asJSON bool) error {
	switch {
	case f.key != "" && f.whatIf != "":
		return usageError("--key and --what-if cannot be combined")
	case f.aae && (f.key != "" || f.whatIf != "" || f.watch > 0):
		return usageError("--aae cannot be combined with --key, --what-if or --watch")
	case f.watch > 0 && (f.key != "" || f.whatIf != "" || asJSON):
		return usageError("--watch cannot be combined with --key, --what-if or --json")
	case f.watch < 0:
		return usageError("--watch must be a positive interval, got %s", f.watch)
	}
	return nil
}

// runRing fetches and prints what f asks for.
func (a *app) runRing(ctx context.Context, o *clientOpts, f ringFlags) error {
	var op, name string
	if f.whatIf != "" {
		spec, err := parseWhatIf(f.whatIf)
		if err != nil {
			return err
		}
		op, name, _ = strings.Cut(spec, ":")
	}
	if f.zone != "" && op != "add" {
		return usageError("--zone goes with --what-if add NAME only")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	switch {
	case f.aae:
		return show(a, o.json, func() ([]client.AAEPartition, error) { return c.AAE(ctx) }, a.printAAE)
	case f.key != "":
		return show(a, o.json, func() (client.KeyPlacement, error) { return c.Placement(ctx, f.key) },
			func(kp client.KeyPlacement) error { return a.printPlacement(f.key, kp) })
	case f.whatIf != "":
		return show(a, o.json, func() (client.WhatIf, error) {
			if f.zone != "" {
				return c.WhatIfAddZone(ctx, name, f.zone)
			}
			return c.WhatIf(ctx, op, name)
		}, a.printWhatIf)
	case f.watch > 0:
		return a.watchRing(ctx, c, f.watch)
	default:
		return show(a, o.json, func() (client.Ring, error) { return c.Ring(ctx) }, a.printRing)
	}
}

// printAAE prints one row per partition the node replicates, after a
// summary line.
func (a *app) printAAE(parts []client.AAEPartition) error {
	if len(parts) == 0 {
		fmt.Fprintln(a.stdout, "anti-entropy is off on this node, or it replicates no partition yet")
		return nil
	}
	inSync, never := 0, 0
	var repaired uint64
	for _, p := range parts {
		if p.InSync {
			inSync++
		}
		if p.LastFull == "" {
			never++
		}
		repaired += p.KeysRepaired
	}
	fmt.Fprintf(a.stdout, "partitions=%d in_sync=%d never_fully_exchanged=%d keys_repaired=%d\n", len(parts), inSync, never, repaired)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tREPLICAS\tLAST FULL EXCHANGE\tKEYS REPAIRED\tIN SYNC\t")
	for _, p := range parts {
		last := p.LastFull
		if last == "" {
			last = "never"
		}
		sync := "yes"
		switch {
		case p.LastExchange == "":
			sync = "not compared yet"
		case !p.InSync:
			sync = "no"
			if p.LastError != "" {
				sync = "no (" + truncate(p.LastError, 60) + ")"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t\n", p.Partition, strings.Join(p.Replicas, ","), last, p.KeysRepaired, sync)
	}
	return tw.Flush()
}

// truncate shortens s to at most n bytes for a table cell.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseWhatIf checks a --what-if value and returns the server's spelling,
// add:NAME or remove:NAME.
func parseWhatIf(s string) (string, error) {
	op, name, ok := strings.Cut(s, ":")
	if !ok {
		return "", usageError("--what-if must be add:NAME or remove:NAME (or \"add NAME\"), got %q", s)
	}
	if op != "add" && op != "remove" {
		return "", usageError("--what-if operation must be add or remove, got %q", op)
	}
	if name == "" || strings.ContainsAny(name, " \t\n/") {
		return "", usageError("--what-if needs a node name without spaces or slashes, got %q", name)
	}
	return op + ":" + name, nil
}

func (a *app) printInspection(in client.Ring) error {
	fmt.Fprintf(a.stdout, "partitions=%d replication=%d replicas=%d nodes=%d fingerprint=%s\n",
		in.Partitions, in.ReplicationFactor, in.Replicas, len(in.Nodes), in.Fingerprint)
	if in.Degraded {
		fmt.Fprintf(a.stdout, "DEGRADED: %d node(s) for replication factor %d; each key has only %d replica(s)\n",
			len(in.Nodes), in.ReplicationFactor, in.Replicas)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NODE\tOWNED\tREPLICATED\tSHARE\tREPLICA SHARE\tKEYS\tBYTES\t")
	var owned, replicated int
	var keys, bytes int64
	for _, n := range in.Nodes {
		k, b := "?", "?"
		if n.HasStats {
			k, b = fmt.Sprint(n.Keys), humanBytes(n.Bytes)
			keys += n.Keys
			bytes += n.Bytes
		}
		owned += n.Owned
		replicated += n.Replicated
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%.1f%%\t%s\t%s\t\n",
			n.Node, n.Owned, n.Replicated, 100*n.KeySpaceShare, 100*n.ReplicaShare, k, b)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t\t\t%d\t%s\t\n", owned, replicated, keys, humanBytes(bytes))
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := a.printZones(in); err != nil {
		return err
	}
	if owned != in.Partitions && len(in.Nodes) > 0 {
		fmt.Fprintf(a.stdout, "warning: %d of %d partitions have an owner\n", owned, in.Partitions)
	}
	return nil
}

func (a *app) printPlacement(key string, kp client.KeyPlacement) error {
	fmt.Fprintf(a.stdout, "key:       %s\npartition: %d\nreplicas:  %s\nfallbacks: %s\n",
		displayValue([]byte(key)), kp.Partition, listOrNone(kp.Replicas), listOrNone(kp.Fallbacks))
	if kp.ReplicaZones != nil {
		fmt.Fprintf(a.stdout, "zones:     %s\n", strings.Join(kp.ReplicaZones, " "))
	}
	return nil
}

// printZones prints replicas per zone when the ring has zones, and the
// inspection's warnings: members without a zone among zoned ones, a node
// that is a replica of every partition, a zone over ceil(N/zones)
// replicas of some partition (losing it loses more copies than an even
// spread would).
func (a *app) printZones(in client.Ring) error {
	if len(in.Zones) == 0 {
		return nil
	}
	fmt.Fprintf(a.stdout, "zones=%d limit=%d replica(s) of a partition per zone\n", len(in.Zones), in.ZoneLimit)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ZONE\tNODES\tREPLICATED\tREPLICA SHARE\tMAX PER PARTITION\tOVER LIMIT\t")
	for _, z := range in.Zones {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%d\t%d\t\n", cmp.Or(z.Zone, "(none)"), z.Nodes, z.Replicated,
			100*z.ReplicaShare, z.MaxReplicas, z.OverLimit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, w := range in.Warnings {
		fmt.Fprintf(a.stdout, "warning: %s\n", w)
	}
	return nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}

// maxMovesShown bounds the per-partition lines of a what-if table; --json
// has them all.
const maxMovesShown = 10

// printWhatIf renders a what-if answer: the totals, each node's load before
// and after, and the first partitions that move.
func (a *app) printWhatIf(w client.WhatIf) error {
	fmt.Fprintf(a.stdout, "what if %s %s: %d -> %d members\n", w.Op, w.Node, w.MembersBefore, w.MembersAfter)
	fmt.Fprintf(a.stdout, "partitions changing replicas: %d\n", len(w.ChangedPartitions))
	fmt.Fprintf(a.stdout, "replica slots to move: %d of %d (%.1f%%; the least any balanced placement could move: %.1f%%)\n",
		w.MovedSlots, w.TotalSlots, 100*w.MovedFraction, 100*w.OptimalFraction)
	if w.HasBytes {
		fmt.Fprintf(a.stdout, "bytes to move: about %s\n", humanBytes(w.MovedBytes))
	} else {
		fmt.Fprintln(a.stdout, "bytes to move: unknown (no size figures from the nodes)")
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOWNED\tREPLICATED\tSHARE")
	for _, s := range w.Shares {
		fmt.Fprintf(tw, "%s\t%d -> %d\t%d -> %d\t%.1f%% -> %.1f%%\n", s.Node,
			s.OwnedBefore, s.OwnedAfter, s.ReplicatedBefore, s.ReplicatedAfter, 100*s.ShareBefore, 100*s.ShareAfter)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, m := range w.Moves {
		if i == maxMovesShown {
			fmt.Fprintf(a.stdout, "... and %d more partitions (--json lists them all)\n", len(w.Moves)-i)
			break
		}
		fmt.Fprintf(a.stdout, "partition %d: %s -> %s (gains %s; drops %s)\n", m.Partition,
			listOrNone(m.Before), listOrNone(m.After), listOrNone(m.Added), listOrNone(m.Dropped))
	}
	return nil
}

func (a *app) printOK(asJSON bool, ok client.OKBody) error {
	if asJSON {
		return a.printJSON(ok)
	}
	msg := "OK"
	if ok.Message != "" {
		msg += ": " + ok.Message
	}
	_, err := fmt.Fprintln(a.stdout, msg)
	return err
}

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the ringkv version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			v := versionInfo()
			if asJSON {
				return a.printJSON(v)
			}
			commit := ""
			if v.Commit != "" {
				commit = "commit " + v.Commit + ", "
			}
			_, err := fmt.Fprintf(a.stdout, "ringkv %s (%s%s, %s/%s)\n", v.Version, commit, v.Go, v.OS, v.Arch)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// buildVersion is the answer of "ringkv version".
type buildVersion struct {
	// Version is node.Version, the release a server reports in Redis INFO
	// (ringkv_version), so the two always agree.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from (12 hex
	// digits, "-dirty" for uncommitted changes), when the build recorded it.
	Commit string `json:"commit,omitempty"`
	Go     string `json:"go"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
}

// stampedCommit is the commit a build names with
// -ldflags "-X main.stampedCommit=<rev>" (scripts/image.sh does), for builds
// where Go records no VCS revision itself: a git worktree, whose .git is a
// file Go does not recognise, or a source tree without git.
var stampedCommit string

func versionInfo() buildVersion {
	v := buildVersion{Version: node.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	v.Commit = stampedCommit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v.Commit = rev + dirty
	}
	return v
}

// humanBytes prints a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// show fetches a T and prints it: as JSON with --json, else through human.
func show[T any](a *app, asJSON bool, fetch func() (T, error), human func(T) error) error {
	v, err := fetch()
	if err != nil {
		return err
	}
	if asJSON {
		return a.printJSON(v)
	}
	return human(v)
}
