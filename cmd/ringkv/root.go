package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// app holds the process's standard streams so that every command can be run
// in-process by tests with buffers in their place.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// args is the command line run was given, for a command that runs
	// itself again (chaos, in a network namespace).
	args []string
}

// errSilent marks an error whose message a command already printed (for
// example a dev cluster whose children died); run only sets the exit code.
var errSilent = errors.New("ringkv: error already reported")

// exitCodeError carries a specific exit code out of a command.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// run executes the command line args and returns the process exit code:
// 0 on success, 2 for usage errors, 1 for everything else. Errors are
// printed to stderr as "error: <message>".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, args: args}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ec *exitCodeError
	if errors.Is(err, errSilent) {
		if errors.As(err, &ec) {
			return ec.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	if hint := tokenHint(err); hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", hint)
	}
	if errors.As(err, &ec) {
		return ec.code
	}
	return 1
}

// usageError wraps an argument or flag problem so that it exits with 2.
func usageError(format string, args ...any) error {
	return &exitCodeError{code: 2, err: fmt.Errorf(format, args...)}
}

// rootCmd builds the whole command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ringkv",
		Short: "ringkv: a Dynamo-style leaderless partitioned key-value store",
		Long: `ringkv is a Dynamo-style, leaderless, partitioned, replicated key-value store.

Start a local 3-node cluster with "ringkv dev", then talk to it with the
client commands (put, get, delete) and the operator commands (members, ring,
leave, remove). Client commands reach the first dev node (127.0.0.1:8001)
unless --node says otherwise.`,
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		// With Args set, cobra leaves unknown commands to RunE, which
		// makes them usage errors (exit 2) like bad flags and arguments.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return usageError("unknown command %q for %q%s; see \"ringkv --help\"", args[0], cmd.CommandPath(), hint)
		},
	}
	// Flag parse errors are usage errors: exit code 2, like the flag package.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitCodeError{code: 2, err: err}
	})
	root.AddCommand(
		a.serverCmd(),
		a.devCmd(),
		a.putCmd(),
		a.getCmd(),
		a.deleteCmd(),
		a.membersCmd(),
		a.ringCmd(),
		a.leaveCmd(),
		a.removeCmd(),
		a.chaosCmd(),
		a.benchCmd(),
		a.certsCmd(),
		a.healthCmd(),
		a.k8sZoneCmd(),
		a.versionCmd(),
	)
	return root
}

// exactArgs is cobra.ExactArgs with exit code 2 and a message naming the
// expected arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("%s takes %s, got %d argument(s); see %q", cmd.Name(), names, len(args), cmd.CommandPath()+" --help")
		}
		return nil
	}
}
