package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// requireBrowser, when CI_REQUIRE_BROWSER=1, turns a browser that is
// missing or does not start into a failure instead of a skip: .ci/run
// sets it once its own smoke test of chromium passed.
const requireBrowser = "CI_REQUIRE_BROWSER"

// consoleShots, when set, is where TestConsole writes its screenshots
// (docs/img to refresh those in docs/console.md); by default they go to
// a temporary directory and are only checked.
var consoleShots = flag.String("console-screenshots", "", "directory for TestConsole's PNG screenshots")

// maxShotBytes bounds a screenshot kept in the repository. Only checked
// with -console-screenshots: PNG sizes depend on the host's fonts.
const maxShotBytes = 200 << 10

// noBrowser skips the test, or fails it when the environment asks for
// the browser test to run.
func noBrowser(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(requireBrowser) == "1" {
		t.Fatalf("%s, and %s=1", why, requireBrowser)
	}
	t.Skipf("%s (Debian package chromium; .ci/run installs it)", why)
}

// browserLog is chromedp's error log: it goes to the test while it runs
// and is dropped after, since chromedp's goroutines may still report a
// closed target or socket once the test is over, and t.Logf then panics.
type browserLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (l *browserLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("chromium: "+format, args...)
	}
}

func (l *browserLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
}

// newBrowser starts headless chromium for the rest of the test, or skips
// the test when it cannot start (see noBrowser).
func newBrowser(t *testing.T, deadline time.Time) context.Context {
	t.Helper()
	if !fileExists(chromiumPath) {
		noBrowser(t, "the console browser test needs "+chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // the tests run as root
		chromedp.WindowSize(1200, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	logs := &browserLog{t: t}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(logs.logf))
	ctx, cancelDeadline := context.WithDeadline(ctx, deadline)
	// Cleanups run last added first: the log closes after the browser.
	t.Cleanup(logs.close)
	t.Cleanup(func() { cancelDeadline(); cancelCtx(); cancelAlloc() })
	// The first action starts the browser.
	if err := chromedp.Do(ctx); err != nil {
		noBrowser(t, "chromium does not start: "+err.Error())
	}
	return ctx
}

// consolePage is the console open in the browser.
type consolePage struct {
	ctx   context.Context
	shots string
}

func (p *consolePage) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, p.text())
	}
}

// text is what the page shows, for failure reports.
func (p *consolePage) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return "page text unavailable: " + err.Error()
	}
	return "the page shows:\n" + s
}

// poll waits, in the page, until the JavaScript expression cond is true:
// the page redraws every 2 s, and the test's deadline bounds the wait.
func (p *consolePage) poll(t *testing.T, what, cond string) {
	t.Helper()
	// Generous, and short of the test's deadline so that the failure
	// report can still read the page.
	p.run(t, "wait for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(90*time.Second)))
}

// nextRefresh waits until the page has redrawn since it is called: the
// status line changes on every poll (it carries the time, or an error).
func (p *consolePage) nextRefresh(t *testing.T) {
	t.Helper()
	before := eval[string](t, p, "read the status line", `document.querySelector('#status').textContent`)
	p.poll(t, "the next refresh", fmt.Sprintf(`document.querySelector('#status').textContent !== %s`, strconv.Quote(before)))
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, p *consolePage, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shot saves the element sel as a PNG and checks it is one, and, when it
// is for the repository, that its size is fit for it.
func (p *consolePage) shot(t *testing.T, name, sel string) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if *consoleShots != "" && len(png) > maxShotBytes {
		t.Errorf("screenshot %s is %d bytes, more than %d", name, len(png), maxShotBytes)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// metricSum sums, from addr's /metrics, the samples of the counter name
// whose labels include every one of labels (each as `k="v"`).
func metricSum(t *testing.T, addr, token, name string, labels ...string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v %s", resp.StatusCode, err, body.Bytes())
	}
	m, err := parseMetrics(body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return sumOf(m, name, labels...)
}
