package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/ringkv/ringkv/client"
	"github.com/spf13/cobra"
)

// errNotFound is returned by "get" for a missing or deleted key, so that
// scripts can tell it apart from success by the exit code.
var errNotFound = fmt.Errorf("not found")

func (a *app) putCmd() *cobra.Command {
	var o clientOpts
	var w, causal string
	cmd := &cobra.Command{
		Use:   "put KEY VALUE|-",
		Short: "Write a value (\"-\" reads it from stdin)",
		Long: `Write VALUE under KEY. With "-" the value is read from stdin, byte for byte.

Without --context the write is blind: it supersedes whatever the coordinating
node holds for the key. With the context printed by "get", it supersedes
exactly the versions that context covers, which is how siblings are resolved.`,
		Args: exactArgs(2, "KEY and VALUE (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			value := []byte(args[1])
			if args[1] == "-" {
				// Bounded so that a runaway pipe cannot exhaust memory;
				// a value above the node's limit still reaches the node,
				// whose 413 names the limit. One byte more than the cap
				// tells a longer input from one that fits exactly: a
				// longer one is refused, never stored cut short.
				value, err = io.ReadAll(io.LimitReader(a.stdin, maxStdinBytes+1))
				if err != nil {
					return fmt.Errorf("read value from stdin: %w", err)
				}
				if len(value) > maxStdinBytes {
					return fmt.Errorf("value on stdin is larger than %d bytes, the most put reads", maxStdinBytes)
				}
			}
			ack, err := c.Put(cmd.Context(), args[0], value, client.W(client.Quorum(w)), client.WithCausal(causal))
			if err != nil {
				return err
			}
			return a.printWrite(o.json, ack)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&w, "w", "", "write quorum: one, quorum, all or a number (default: the node's quorum.w)")
	cmd.Flags().StringVar(&causal, "context", "", "causal context from a previous get; resolves the siblings it covers")
	return cmd
}

func (a *app) deleteCmd() *cobra.Command {
	var o clientOpts
	var w, causal string
	cmd := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a key (writes a tombstone)",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ack, err := c.Delete(cmd.Context(), args[0], client.W(client.Quorum(w)), client.WithCausal(causal))
			if err != nil {
				return err
			}
			return a.printWrite(o.json, ack)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&w, "w", "", "write quorum: one, quorum, all or a number (default: the node's quorum.w)")
	cmd.Flags().StringVar(&causal, "context", "", "causal context from a previous get; deletes only what it covers")
	return cmd
}

// writeResult is the --json answer of put and delete.
type writeResult struct {
	OK       bool             `json:"ok"`
	Context  string           `json:"context"`
	Siblings []client.Sibling `json:"siblings,omitempty"`
}

// printWrite shows an acknowledged write. When concurrent versions remain
// the node answered with all of them, and the context it returned covers
// them: it is printed with them, so that a later write using it resolves
// exactly what was shown.
func (a *app) printWrite(asJSON bool, ack client.Result) error {
	if asJSON {
		return a.printJSON(writeResult{OK: true, Context: ack.Context, Siblings: ack.Siblings})
	}
	if len(ack.Siblings) == 0 {
		_, err := fmt.Fprintf(a.stdout, "OK\ncontext: %s\n", ack.Context)
		return err
	}
	fmt.Fprintln(a.stdout, "OK")
	return a.printGet(ack) // a 300 answer: Found, with its siblings
}

func (a *app) getCmd() *cobra.Command {
	var o clientOpts
	var r string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key: its value, or its siblings and their context",
		Long: `Read KEY. One live version prints the raw value on stdout (the causal context
goes to stderr, so "ringkv get k > file" saves the bytes exactly). Concurrent
versions (siblings) print a table of them and the context that resolves them:
pass it to "ringkv put KEY VALUE --context CTX". A missing or deleted key
prints "error: not found" and exits 1.`,
		Args: exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			res, err := c.Get(cmd.Context(), args[0], client.R(client.Quorum(r)))
			if err != nil {
				return err
			}
			if o.json {
				if err := a.printJSON(res); err != nil {
					return err
				}
				if !res.Found {
					return errSilent
				}
				return nil
			}
			return a.printGet(res)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&r, "r", "", "read quorum: one, quorum, all or a number (default: the node's quorum.r)")
	return cmd
}

func (a *app) printGet(res client.Result) error {
	switch {
	case !res.Found:
		if res.Context != "" {
			fmt.Fprintf(a.stderr, "context: %s\n", res.Context)
		}
		return errNotFound
	case res.Siblings == nil:
		if _, err := a.stdout.Write(res.Value); err != nil {
			return err
		}
		if n := len(res.Value); n > 0 && res.Value[n-1] != '\n' && isText(res.Value) {
			// Text values end with a newline so the shell prompt does not
			// run into them; binary values are left byte-exact.
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stderr, "context: %s\n", res.Context)
		return nil
	default:
		fmt.Fprintf(a.stdout, "%d siblings (concurrent writes); resolve with: ringkv put KEY VALUE --context CTX\n", len(res.Siblings))
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOT\tWRITTEN\tVALUE")
		for _, s := range res.Siblings {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Dot, s.WallTime, displayValue(s.Value))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err := fmt.Fprintf(a.stdout, "context: %s\n", res.Context)
		return err
	}
}

// isText reports whether v is UTF-8 text without control characters
// other than tab and newlines.
func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// displayValue shows a value in a table cell: printable text as is, anything
// else Go-quoted, long values cut.
func displayValue(v []byte) string {
	const maxShown = 80
	s := string(v)
	cut := ""
	if len(s) > maxShown {
		s, cut = s[:maxShown], fmt.Sprintf("... (%d bytes)", len(v))
	}
	q := strconv.Quote(s)
	if q[1:len(q)-1] == s && s != "" {
		return s + cut
	}
	return q + cut
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
