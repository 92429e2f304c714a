package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 200 || !slices.Contains(lines, "w3-49") {
		t.Fatalf("%d lines, want 200 including w3-49", len(lines))
	}
}

func TestLoggerDropsLateLines(t *testing.T) {
	var log func()
	t.Run("inner", func(t *testing.T) {
		l := Logger(t)
		l.Info("during the test")
		log = func() { l.Info("after the test") }
	})
	log() // would panic if written to the ended test's output
}

func TestClock(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("after Advance(1m): %v", got)
	}
	s := NewSteppingClock(start, time.Microsecond)
	a, b := s.Now(), s.Now()
	if !a.Equal(start.Add(time.Microsecond)) || b.Sub(a) != time.Microsecond {
		t.Fatalf("stepping clock read %v then %v", a, b)
	}
}

func TestReadHexFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.hex")
	if err := os.WriteFile(path, []byte("req 0a0b\n0c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := ReadHexFile(t, path)
	want := []HexLine{{"req", []byte{10, 11}}, {"", []byte{12}}}
	if len(got) != 2 || got[0].Label != want[0].Label || !slices.Equal(got[0].Bytes, want[0].Bytes) ||
		got[1].Label != "" || !slices.Equal(got[1].Bytes, want[1].Bytes) {
		t.Fatalf("ReadHexFile = %+v, want %+v", got, want)
	}
}

// TestRefusedAddr: a dial to the address is refused, and no listener can
// take the port while the test runs.
func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	if runtime.GOOS == "linux" {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Fatalf("a listener took %s while the test holds it", addr)
		}
	}
}
