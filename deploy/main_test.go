package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// binary is the ringkv executable TestMain built, for the commands the
// manifests run (health checks, the preStop hook) to be tried for real.
var binary string

// repoRoot is the module root.
const repoRoot = ".."

func TestMain(m *testing.M) { os.Exit(buildAndRun(m)) }

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringkv-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ringkv")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The flags scripts/image.sh builds with, so that its build finds
	// every package in the build cache.
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-buildvcs=false", "-o", binary, "./cmd/ringkv")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: go build ./cmd/ringkv: %v\n%s", err, out.Bytes())
		return 1
	}
	return m.Run()
}

// goTool finds the go command that runs these tests.
func goTool() string {
	//nolint:staticcheck // SA1019: the go that built this test builds the binary
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// runRingkv runs the built binary with args and returns its exit code and
// combined output.
func runRingkv(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return runRingkvCtx(ctx, t, args...)
}

// checkCommand checks that args (without the program) is a command line
// the ringkv CLI accepts: the subcommand exists and every flag parses.
// --help is appended, so nothing runs: cobra parses the flags (an unknown
// one exits 2) and prints the usage.
func checkCommand(t *testing.T, what string, args []string) {
	t.Helper()
	code, out := runRingkv(t, append(append([]string(nil), args...), "--help")...)
	if code != 0 || !bytes.Contains([]byte(out), []byte("Usage:")) {
		t.Errorf("%s: ringkv %v is not a command ringkv accepts (exit %d):\n%s", what, args, code, out)
	}
}

// runRingkvCtx is runRingkv under ctx, for commands that take long.
func runRingkvCtx(ctx context.Context, t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("ringkv %v: %v", args, err)
	}
	return 0, string(out)
}

// execOutput runs a command under ctx and returns its combined output.
func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
