package e2e

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

// binary is the ringkv executable TestMain built for this run.
var binary string

// repoRoot is the module root, where cmd/ringkv and configs/ live.
const repoRoot = ".."

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringkv-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ringkv")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	// Built once, without -race: the race detector belongs to the unit
	// tests, and a plain build keeps this package's time modest.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", binary, "./cmd/ringkv")
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/ringkv: %v\n%s", err, out.Bytes())
		return 1
	}
	return m.Run()
}

// goTool finds the go command that runs these tests.
func goTool() string {
	//nolint:staticcheck // SA1019: the go that built this test builds the binary
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// testDeadline bounds one test: the earlier of the test binary's -timeout
// less a margin and limit. A test cut short by -timeout says so, since its
// failure would otherwise read as the cluster being slow: the package
// needs about 10 minutes, more than go test's default -timeout.
func testDeadline(t *testing.T, limit time.Duration) time.Time {
	t.Helper()
	d := time.Now().Add(limit)
	if td, ok := t.Deadline(); ok && td.Add(-10*time.Second).Before(d) {
		d = td.Add(-10 * time.Second)
		left := time.Until(d)
		if left <= 0 {
			t.Fatalf("the test binary's -timeout ran out before this test began (it may take up to %s): run the e2e tests with -timeout 20m, as README.md gives", limit)
		}
		t.Logf("the test binary's -timeout leaves this test %s of its %s", left.Round(time.Second), limit)
	}
	return d
}
