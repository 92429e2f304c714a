package node

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRateLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	now := time.Unix(1000, 0)
	l := NewRateLog(log, slog.LevelWarn, "client refused", time.Minute, func() time.Time { return now })
	logged := 0
	for range 100 {
		if l.Log("no_token", "remote", "10.0.0.1:5") {
			logged++
		}
	}
	if l.Log("unknown_token") {
		logged++ // another reason has its own window
	}
	now = now.Add(59 * time.Second)
	if l.Log("no_token") {
		logged++
	}
	now = now.Add(time.Second)
	if l.Log("no_token", "remote", "10.0.0.2:5") {
		logged++
	}
	if logged != 3 {
		t.Errorf("%d lines logged, want 3", logged)
	}
	want := strings.Join([]string{
		`level=WARN msg="client refused" reason=no_token remote=10.0.0.1:5 suppressed=0`,
		`level=WARN msg="client refused" reason=unknown_token suppressed=0`,
		`level=WARN msg="client refused" reason=no_token remote=10.0.0.2:5 suppressed=100`,
		``,
	}, "\n")
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestRateLogConcurrent: many goroutines hammering one reason write one
// line; the rest are counted.
func TestRateLogConcurrent(t *testing.T) {
	var mu sync.Mutex
	lines := 0
	h := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		lines++
		return len(p), nil
	}), nil)
	l := NewRateLog(slog.New(h), slog.LevelWarn, "refused", time.Hour, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				l.Log("r")
			}
		})
	}
	wg.Wait()
	if lines != 1 {
		t.Errorf("%d lines, want 1", lines)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := l.reasons["r"].suppressed; got != 8*200-1 {
		t.Errorf("suppressed = %d, want %d", got, 8*200-1)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
