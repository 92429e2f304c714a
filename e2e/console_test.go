package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// consoleShots, when set, is where TestConsole writes its screenshots
// (docs/img to refresh those in docs/console.md); by default they go to
// a temporary directory and are only checked.
var consoleShots = flag.String("console-screenshots", "", "directory for TestConsole's PNG screenshots")

// maxShotBytes bounds a screenshot kept in the repository.
const maxShotBytes = 200 << 10

// TestConsole drives the web console of a 3-node cluster in headless
// chromium: the ring picture has each node's partitions, a key's siblings
// show with their dots, a what-if draws the moving partitions, and a
// killed node turns red.
func TestConsole(t *testing.T) {
	if !fileExists(chromiumPath) {
		t.Skipf("the console browser test needs %s (Debian package chromium; .ci/run installs it)", chromiumPath)
	}
	deadline := testDeadline(t, 4*time.Minute)
	names := []string{"c1", "c2", "c3"}
	c := newElasticCluster(t, names, "")
	c.partitions = 61 // arcs wide enough to see
	c.form(t, deadline, names...)
	ctx := newBrowser(t, deadline)
	shots := *consoleShots
	if shots == "" {
		shots = t.TempDir()
	}
	page := &consolePage{ctx: ctx, shots: shots}
	page.run(t, "open the console", chromedp.Navigate("http://"+c.httpAddr("c1")+"/ui"))

	t.Run("ring", func(t *testing.T) { checkRingArcs(t, page, c.httpAddr("c1")) })
	t.Run("siblings", func(t *testing.T) { checkSiblings(t, page, c.httpAddr("c1")) })
	t.Run("what-if", func(t *testing.T) { checkWhatIf(t, page, c.httpAddr("c1")) })
	t.Run("charts", func(t *testing.T) {
		// The writes of the siblings step went to c1 over HTTP.
		page.poll(t, "a throughput chart for HTTP PUT", `document.querySelector('#charts .chart[data-op="http put"]') !== null`)
		// Reads while the page takes a few samples, for lines in the
		// screenshot: bounded in count, and they stop once the chart has
		// its points.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			pace := time.NewTicker(20 * time.Millisecond) // a steady client, at most 20 s
			defer pace.Stop()
			for i := 0; i < 1000; i++ {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				_, _, _ = httpDo(http.MethodGet, "http://"+c.httpAddr("c1")+"/v1/kv/console-chart-"+strconv.Itoa(i%10), nil)
			}
		}()
		page.poll(t, "six points on the HTTP GET chart", `(() => { const l = document.querySelector('#charts .chart[data-op="http get"] g.ops polyline');
			return l !== null && l.points.length >= 6; })()`)
		close(stop)
		<-done
		page.shot(t, "console-charts.png", "main > section:nth-of-type(3)")
	})
	t.Run("remove asks first", func(t *testing.T) { checkRemoveConfirm(t, page, c.httpAddr("c1"), deadline) })
	t.Run("killed node turns red", func(t *testing.T) {
		c.server("c3").kill(t)
		page.poll(t, "c3's row marked down", `(() => { const r = document.querySelector('#members tr[data-node="c3"]');
			return r !== null && r.classList.contains('down') && getComputedStyle(r.cells[0]).color === 'rgb(198, 40, 40)'; })()`)
		page.poll(t, "c3's arcs marked down", `document.querySelectorAll('#ring path.arc.down').length > 0 &&
			[...document.querySelectorAll('#ring path.arc.down')].every(a => a.dataset.owner === 'c3')`)
		page.shot(t, "console-members.png", "main > section:nth-of-type(2)")
		page.shot(t, "console-ring-down.png", "#ring-section")
	})
}

// newBrowser starts headless chromium for the rest of the test.
func newBrowser(t *testing.T, deadline time.Time) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // the tests run as root
		chromedp.WindowSize(1200, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelDeadline := context.WithDeadline(ctx, deadline)
	t.Cleanup(func() { cancelDeadline(); cancelCtx(); cancelAlloc() })
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

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, p *consolePage, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shot saves the element sel as a PNG and checks it is one, of a size fit
// for the repository.
func (p *consolePage) shot(t *testing.T, name, sel string) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if len(png) > maxShotBytes {
		t.Errorf("screenshot %s is %d bytes, more than %d", name, len(png), maxShotBytes)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRingArcs compares the arcs drawn per owner with the ring the node
// reports.
func checkRingArcs(t *testing.T, page *consolePage, addr string) {
	var in inspection
	if err := getJSON(addr, "/v1/ring", &in); err != nil {
		t.Fatal(err)
	}
	page.poll(t, "the ring drawn", fmt.Sprintf(`document.querySelectorAll('#ring path.arc').length === %d`, in.Partitions))
	page.poll(t, "three alive members listed", `document.querySelectorAll('#members tbody tr').length === 3 &&
		document.querySelectorAll('#members tbody tr.down').length === 0`)
	drawn := eval[map[string]int](t, page, "count arcs", `[...document.querySelectorAll('#ring path.arc')].reduce((m, a) => {
		m[a.dataset.owner] = (m[a.dataset.owner] || 0) + 1; return m; }, {})`)
	want := map[string]int{}
	for _, n := range in.Nodes {
		want[n.Node] = n.Owned
	}
	if fmt.Sprint(drawn) != fmt.Sprint(want) {
		t.Fatalf("arcs per owner %v, the ring says %v", drawn, want)
	}
	dimmed := eval[int](t, page, "hover", `(() => { document.querySelector('#legend li[data-node="c1"]').dispatchEvent(new MouseEvent('mouseenter'));
		return document.querySelectorAll('#ring path.arc.dim').length; })()`)
	if dimmed != 0 { // N=3 on 3 nodes: c1 replicates every partition
		t.Errorf("hovering c1 dims %d partitions, want 0", dimmed)
	}
	page.run(t, "unhover", chromedp.Evaluate[chromedp.Void](`document.querySelector('#legend li[data-node="c1"]').dispatchEvent(new MouseEvent('mouseleave'))`))
	page.shot(t, "console-ring.png", "#ring-section")
}

// checkSiblings writes two versions with the same context, then looks the
// key up in the console.
func checkSiblings(t *testing.T, page *consolePage, addr string) {
	const key = "console/siblings"
	url := "http://" + addr + "/v1/kv/console%2Fsiblings?w=all"
	code, _, err := httpDo(http.MethodPut, url, []byte("first"))
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("PUT first: %d %v", code, err)
	}
	_, _, ctxHeader, err := getKey(addr, key, "all")
	if err != nil || ctxHeader == "" {
		t.Fatalf("GET: context %q, %v", ctxHeader, err)
	}
	for _, v := range []string{"left", "right"} {
		req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader([]byte(v)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Ringkv-Context", ctxHeader)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusMultipleChoices {
			t.Fatalf("PUT %s: %d", v, resp.StatusCode)
		}
	}
	page.run(t, "look the key up", chromedp.SetValue(chromedp.CSS("#key"), key), chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	page.poll(t, "two siblings shown", `document.querySelectorAll('#versions tr.version:not(.deleted)').length === 2`)
	rows := eval[[]string](t, page, "read the siblings", `[...document.querySelectorAll('#versions tr.version')].map(r => r.innerText)`)
	text := eval[string](t, page, "read the lookup", `document.querySelector('#key-result').innerText`)
	for _, want := range []string{"left", "right", "context:", "preference list"} {
		if !bytes.Contains([]byte(text), []byte(want)) {
			t.Errorf("lookup lacks %q:\n%s", want, text)
		}
	}
	t.Logf("siblings: %q", rows)
	page.shot(t, "console-key.png", "main > section:nth-of-type(4)")
}

// checkWhatIf asks the console what adding a node would move and compares
// the arcs it marks with the node's answer.
func checkWhatIf(t *testing.T, page *consolePage, addr string) {
	var w struct {
		Changed []int `json:"changed_partitions"`
	}
	if err := getJSON(addr, "/v1/ring?what_if=add:c4", &w); err != nil {
		t.Fatal(err)
	}
	if len(w.Changed) == 0 {
		t.Fatal("adding c4 changes no partition")
	}
	slices.Sort(w.Changed)
	page.run(t, "ask what if c4 joined", chromedp.SetValue(chromedp.CSS("#whatif-node"), "c4"), chromedp.Click(chromedp.CSS("#whatif-form button[type=submit]")))
	page.poll(t, "moving arcs drawn", fmt.Sprintf(`document.querySelectorAll('#ring path.move').length === %d`, len(w.Changed)))
	marked := eval[[]int](t, page, "read the moving arcs", `[...document.querySelectorAll('#ring path.move')].map(a => Number(a.dataset.partition)).sort((a, b) => a - b)`)
	got, _ := json.Marshal(marked)
	want, _ := json.Marshal(w.Changed)
	if !bytes.Equal(got, want) {
		t.Errorf("moving arcs %s, the node says %s", got, want)
	}
	page.shot(t, "console-whatif.png", "#ring-section")
	page.run(t, "clear the what-if", chromedp.Click(chromedp.CSS("#whatif-clear")))
}

// checkRemoveConfirm clicks remove on c3's row, answers the confirmation
// with Cancel, and checks that c3 is still in the ring.
func checkRemoveConfirm(t *testing.T, cp *consolePage, addr string, deadline time.Time) {
	questions := make(chan string, 1)
	dialogs := chromedp.Events(cp.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			questions <- ev.Message
			// Cancel: the page must then send nothing.
			_, _ = chromedp.Call(cp.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			return
		}
	}()
	// No token on a node without tokens: admin, so the button is there.
	cp.poll(t, "a remove button on c3", `document.querySelector('#members tr[data-node="c3"] button[data-action="remove"]') !== null`)
	cp.run(t, "click remove", chromedp.Click(chromedp.CSS(`#members tr[data-node="c3"] button[data-action="remove"]`)))
	select {
	case q := <-questions:
		if !bytes.Contains([]byte(q), []byte("Remove c3")) {
			t.Errorf("confirmation %q does not name the removal of c3", q)
		}
	case <-time.After(time.Until(deadline)):
		t.Fatal("no confirmation asked before remove")
	}
	var ms []member
	if err := getJSON(addr, "/v1/members", &ms); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == "c3" && m.Status != "joined" {
			t.Errorf("c3 is %s after a cancelled remove", m.Status)
		}
	}
}

// TestConsoleTokens opens the console of a node that asks for tokens: read
// only without one or with a read token, leave offered with an admin token.
func TestConsoleTokens(t *testing.T) {
	if !fileExists(chromiumPath) {
		t.Skipf("the console browser test needs %s (Debian package chromium; .ci/run installs it)", chromiumPath)
	}
	deadline := testDeadline(t, 2*time.Minute)
	readTok, adminTok := randomHex(t, 16), randomHex(t, 16)
	rs, as := sha256.Sum256([]byte(readTok)), sha256.Sum256([]byte(adminTok))
	extra := fmt.Sprintf("auth:\n  tokens:\n    - {name: viewer, token_sha256: %x, role: read}\n    - {name: operator, token_sha256: %x, role: admin}\n", rs, as)
	c := newElasticCluster(t, []string{"s1"}, extra)
	c.spawn(t, "s1").waitReady(t, deadline)
	page := &consolePage{ctx: newBrowser(t, deadline), shots: t.TempDir()}
	page.run(t, "open the console", chromedp.Navigate("http://"+c.httpAddr("s1")+"/ui/"))

	page.poll(t, "read-only without a token", `document.querySelector('#role').textContent.includes('read-only (none)')`)
	page.poll(t, "the refusal shown", `document.querySelector('#status').className === 'error' &&
		document.querySelector('#status').textContent.startsWith('401')`)
	if n := eval[int](t, page, "count rows", `document.querySelectorAll('#members tbody tr').length`); n != 0 {
		t.Errorf("%d member rows without a token", n)
	}

	useToken := func(tok string) {
		page.run(t, "type a token", chromedp.SetValue(chromedp.CSS("#token"), tok),
			chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	}
	useToken(readTok)
	page.poll(t, "read-only with a read token, members shown", `document.querySelector('#role').textContent.includes('read-only (read)') &&
		document.querySelectorAll('#members tbody tr').length === 1`)
	if n := eval[int](t, page, "count actions", `document.querySelectorAll('#members button[data-action]').length`); n != 0 {
		t.Errorf("%d leave/remove buttons for a read token", n)
	}
	useToken(adminTok)
	page.poll(t, "leave offered to an admin", `document.querySelector('#role').textContent === 'admin' &&
		document.querySelector('#members tr[data-node="s1"] button[data-action="leave"]') !== null`)
	if got := eval[string](t, page, "read the stored token", `sessionStorage.getItem('ringkv-token')`); got != adminTok {
		t.Errorf("sessionStorage holds %q, want the admin token", got)
	}
}
