package storage

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// crashDirEnv makes the test binary act as the crash-test child.
const crashDirEnv = "RINGKV_STORAGE_CRASH_CHILD_DIR"

func crashConfig(t testing.TB, dir string) Config {
	cfg := testConfig(t, dir)
	cfg.Fsync = FsyncAlways
	cfg.SegmentBytes = 64 << 10  // many rolls
	cfg.SnapshotBytes = 32 << 10 // background snapshots while killed
	return cfg
}

// TestCrashChild is the child process of TestCrashRecovery: it writes as
// fast as it can from several goroutines and prints "ack KEY VALUE" for
// each write Apply acknowledged, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	cfg := crashConfig(t, dir)
	cfg.Logger = nil
	e, err := Open(cfg)
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(3)
	}
	run := os.Getenv(crashDirEnv + "_RUN")
	var out sync.Mutex
	fmt.Println("ready")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			// Bounded in case the parent never kills us.
			for i := 0; i < 1_000_000; i++ {
				key := fmt.Sprintf("r%s-w%d-%d", run, w, i)
				val := fmt.Sprintf("v%d-%s", i, strings.Repeat("x", i%50))
				_, err := e.Update(context.Background(), []byte(key), func(cur vclock.Siblings) (vclock.Siblings, error) {
					_, next := vclock.Mint(cur, e.Incarnation(), vclock.Write{Blind: true, Value: []byte(val), WallTime: time.Now().UnixNano()})
					return next, nil
				})
				if err != nil {
					fmt.Printf("write failed: %v\n", err)
					os.Exit(4)
				}
				out.Lock()
				fmt.Printf("ack %s %s\n", key, val)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery SIGKILLs a writing child process at random moments
// (sometimes during its recovery) and checks after each kill that every
// write the child reported as acknowledged is in the reopened directory.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	kills := 24
	if testing.Short() {
		kills = 20
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir := t.TempDir()
	acked := map[string]string{}
	incarnation := ""
	for run := range kills {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // only a hang guard
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s_RUN=%d", crashDirEnv, run))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		var readErr error
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			readErr = sc.Err()
		}()
		earlyKill := rng.IntN(5) == 0 // sometimes kill during open/recovery
		delay := time.Duration(rng.IntN(120)+10) * time.Millisecond
		if earlyKill {
			delay = time.Duration(rng.IntN(40)) * time.Millisecond
		}
		var timer <-chan time.Time
		if earlyKill {
			timer = time.After(delay)
		}
		n := 0
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				switch {
				case line == "ready" && timer == nil:
					timer = time.After(delay)
				case strings.HasPrefix(line, "ack "):
					if f := strings.SplitN(line, " ", 3); len(f) == 3 {
						acked[f[1]] = f[2]
						n++
					}
				case strings.HasPrefix(line, "open failed") || strings.HasPrefix(line, "write failed"):
					t.Errorf("run %d: child: %s", run, line)
				}
			case <-timer:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				timer = nil
			}
		}
		// Output ends when the child dies; make sure it is dead in any case.
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		if readErr != nil {
			t.Fatalf("run %d: reading child output: %v", run, readErr)
		}
		if t.Failed() {
			return
		}
		e, err := Open(crashConfig(t, dir))
		if err != nil {
			t.Fatalf("run %d: reopen after kill: %v", run, err)
		}
		// The directory's identity survives every kill; the minting actor
		// is renewed after unclean shutdowns (TestActorKeptAfterCleanCloseRenewedAfterCrash).
		if incarnation == "" {
			incarnation = e.id.Incarnation
		} else if e.id.Incarnation != incarnation {
			t.Fatalf("run %d: directory incarnation changed", run)
		}
		missing := 0
		for k, v := range acked {
			if got, ok := valueOf(e, k); !ok || got != v {
				missing++
				if missing < 5 {
					t.Errorf("run %d: acknowledged %s=%s, found %q", run, k, v, got)
				}
			}
		}
		st := e.Stats()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			t.Fatalf("run %d: %d of %d acknowledged writes lost", run, missing, len(acked))
		}
		t.Logf("run %d: killed after %v (early=%v), %d new acks, %d total, %d keys on disk, %d segments, %d snapshots",
			run, delay, earlyKill, n, len(acked), st.Keys, st.Segments, st.Snapshots)
	}
}
