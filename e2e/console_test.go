package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestConsole drives the web console of a 3-node cluster in headless
// chromium: the ring picture has each node's partitions, a key's siblings
// show with their dots, a what-if draws the moving partitions, and a
// killed node turns red.
func TestConsole(t *testing.T) {
	deadline := testDeadline(t, 4*time.Minute)
	ctx := newBrowser(t, deadline) // first: it may skip the test
	names := []string{"c1", "c2", "c3"}
	c := newElasticCluster(t, names, "")
	c.partitions = 61 // arcs wide enough to see
	c.form(t, deadline, names...)
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
	t.Run("chart numbers", func(t *testing.T) { checkChartNumbers(t, page) })
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
	t.Run("remove accepted", func(t *testing.T) {
		answered := answerDialog(page, true)
		page.run(t, "click remove", chromedp.Click(chromedp.CSS(`#members tr[data-node="c3"] button[data-action="remove"]`)))
		waitDialog(t, answered, "Remove c3", deadline)
		eventually(t, deadline, "the remove counted as served", func() error {
			if n := metricSum(t, c.httpAddr("c1"), "", "ringkv_requests_total", `proto="http"`, `op="remove"`, `status="200"`); n != 1 {
				return fmt.Errorf("%v removes answered 200", n)
			}
			return nil
		})
		if n := metricSum(t, c.httpAddr("c1"), "", "ringkv_requests_total", `proto="http"`, `op="remove"`); n != 1 {
			t.Errorf("%v remove requests, want the one accepted", n)
		}
	})
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

// answerDialog answers the page's next dialog, accepting it or not, and
// then sends its message.
func answerDialog(cp *consolePage, accept bool) <-chan string {
	questions := make(chan string, 1)
	dialogs := chromedp.Events(cp.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(cp.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
			questions <- ev.Message
			return
		}
	}()
	return questions
}

// waitDialog waits for the dialog answerDialog answered and checks it
// says want.
func waitDialog(t *testing.T, questions <-chan string, want string, deadline time.Time) {
	t.Helper()
	select {
	case q := <-questions:
		if !strings.Contains(q, want) {
			t.Errorf("confirmation %q does not say %q", q, want)
		}
	case <-time.After(time.Until(deadline)):
		t.Fatal("no confirmation asked")
	}
}

// checkRemoveConfirm clicks remove on c3's row, answers the confirmation
// with Cancel, and checks that the page sent no remove: the node counts
// every request it serves, and the page has redrawn since, so a request
// sent on the answer has been served by then.
func checkRemoveConfirm(t *testing.T, cp *consolePage, addr string, deadline time.Time) {
	answered := answerDialog(cp, false)
	// No token on a node without tokens: admin, so the button is there.
	cp.poll(t, "a remove button on c3", `document.querySelector('#members tr[data-node="c3"] button[data-action="remove"]') !== null`)
	cp.run(t, "click remove", chromedp.Click(chromedp.CSS(`#members tr[data-node="c3"] button[data-action="remove"]`)))
	waitDialog(t, answered, "Remove c3", deadline)
	cp.nextRefresh(t)
	if n := metricSum(t, addr, "", "ringkv_requests_total", `proto="http"`, `op="remove"`); n != 0 {
		t.Errorf("%v remove requests after a cancelled confirmation", n)
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

// checkChartNumbers runs the page's chart arithmetic on fixed metrics:
// parsing (counts summed over status, admin routes left out), quantiles
// inside a bucket and past the last, a counter reset whose count grew
// back past the previous sample's, and the window by age.
func checkChartNumbers(t *testing.T, cp *consolePage) {
	const expo = `ringkv_request_duration_seconds_bucket{op="get",proto="http",status="200",le="0.001"} %d
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="200",le="0.005"} %d
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="200",le="0.01"} %d
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="200",le="+Inf"} %d
ringkv_request_duration_seconds_count{op="get",proto="http",status="200"} %d
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="404",le="0.001"} 0
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="404",le="0.005"} 0
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="404",le="0.01"} %d
ringkv_request_duration_seconds_bucket{op="get",proto="http",status="404",le="+Inf"} %d
ringkv_request_duration_seconds_count{op="get",proto="http",status="404"} %d
ringkv_request_duration_seconds_count{op="members",proto="http",status="200"} 7
`
	text := func(fast, mid, slow, notFound int) string {
		return strconv.Quote(fmt.Sprintf(expo, fast, fast+mid, fast+mid, fast+mid+slow, fast+mid+slow,
			notFound, notFound, notFound))
	}
	// 100 requests under 1 ms; then 100 between 1 and 5 ms, 2 above
	// 10 ms and 2 404s between 5 and 10 ms; then a restart, after which
	// 300 404s took 5 to 10 ms.
	s0, s1, s2 := text(100, 0, 0, 0), text(100, 100, 2, 2), text(0, 0, 0, 300)
	got := eval[map[string]any](t, cp, "compute", fmt.Sprintf(`(() => {
		const h0 = parseHistograms(%s), h1 = parseHistograms(%s), h2 = parseHistograms(%s);
		const g0 = h0.get("http get"), g1 = h1.get("http get");
		const samples = [];
		addSample(samples, %s, 1000); addSample(samples, %s, 3000); addSample(samples, %s, 5000);
		const pts = points(samples).get("http get");
		const window = [];
		addSample(window, %s, 0); addSample(window, %s, 200000); addSample(window, %s, 301000);
		return { keys: [...h1.keys()].join(","), count: g1.count, p50: quantile(0.5, g0, g1), p90: quantile(0.9, g0, g1),
			p99: quantile(0.99, g0, g1), resetOps: pts[1].ops, resetP50: pts[1].p50, kept: window.length };
	})()`, s0, s1, s2, s0, s1, s2, s0, s0, s0))
	want := map[string]any{
		"keys": "http get", "count": 204.0,
		// 104 requests between the samples; ranks 52 and 93.6 fall in
		// 0.001-0.005, which holds 100 of them and has none below it.
		"p50": 0.001 + 0.004*52/100.0, "p90": 0.001 + 0.004*93.6/100.0,
		"p99": 0.01, // rank 102.96: past the last finite bound, so that bound
		// After the restart: 300 in 2 s, their median halfway in 0.005-0.01.
		"resetOps": 150.0, "resetP50": 0.0075,
		"kept": 2.0, // the sample of 301 s before the last is out of the window
	}
	for k, w := range want {
		if wf, ok := w.(float64); ok {
			if gf, ok := got[k].(float64); !ok || gf < wf-1e-9 || gf > wf+1e-9 {
				t.Errorf("%s = %v, want %v", k, got[k], w)
			}
		} else if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
}

// TestConsoleTokens opens the console of a node that asks for tokens: read
// only without one or with a read token, leave offered with an admin token.
func TestConsoleTokens(t *testing.T) {
	deadline := testDeadline(t, 2*time.Minute)
	ctx := newBrowser(t, deadline) // first: it may skip the test
	readTok, adminTok := randomHex(t, 16), randomHex(t, 16)
	rs, as := sha256.Sum256([]byte(readTok)), sha256.Sum256([]byte(adminTok))
	extra := fmt.Sprintf("auth:\n  tokens:\n    - {name: viewer, token_sha256: %x, role: read}\n    - {name: operator, token_sha256: %x, role: admin}\n", rs, as)
	c := newElasticCluster(t, []string{"s1"}, extra)
	c.spawn(t, "s1").waitReady(t, deadline)
	addr := c.httpAddr("s1")
	page := &consolePage{ctx: ctx, shots: t.TempDir()}
	page.run(t, "open the console", chromedp.Navigate("http://"+addr+"/ui/"))

	// Without a token the page asks for one and sends nothing the node
	// would refuse (and count as an attack).
	page.poll(t, "read-only without a token", `document.querySelector('#role').textContent.includes('read-only (none)')`)
	page.poll(t, "a token asked for", `document.querySelector('#status').textContent === 'type a token (role read or above)'`)
	if n := eval[int](t, page, "count rows", `document.querySelectorAll('#members tbody tr').length`); n != 0 {
		t.Errorf("%d member rows without a token", n)
	}
	if n := metricSum(t, addr, readTok, "ringkv_auth_refused_total", `api="http"`); n != 0 {
		t.Errorf("%v HTTP refusals counted for a console without a token", n)
	}

	useToken := func(tok string) {
		page.run(t, "type a token", chromedp.SetValue(chromedp.CSS("#token"), tok),
			chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	}
	// A token the node does not know: asked for again, and whoami counts
	// the refusal as every route does.
	useToken("not-a-token")
	page.poll(t, "an unknown token refused", `document.querySelector('#role').textContent.includes('read-only (none)') &&
		document.querySelector('#status').textContent.endsWith('type a token (role read or above)')`)
	// The page looks the same before the typed token was sent as after
	// its refusal, so the refusal itself is what is waited for.
	eventually(t, time.Now().Add(30*time.Second), "the unknown token's refusal counted", func() error {
		if n := metricSum(t, addr, readTok, "ringkv_auth_refused_total", `api="http"`, `reason="unknown_token"`); n < 1 {
			return fmt.Errorf("unknown token: %v refusals counted", n)
		}
		return nil
	})
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
	// Leave, accepted: the POST carries the admin token, so the node
	// answers it, here with 400 since s1 is the ring's last node.
	answered := answerDialog(page, true)
	page.run(t, "click leave", chromedp.Click(chromedp.CSS(`#members tr[data-node="s1"] button[data-action="leave"]`)))
	waitDialog(t, answered, "Make s1 leave", deadline)
	eventually(t, deadline, "the leave answered", func() error {
		if n := metricSum(t, addr, readTok, "ringkv_requests_total", `proto="http"`, `op="leave"`); n != 1 {
			return fmt.Errorf("%v leave requests", n)
		}
		return nil
	})
	if n := metricSum(t, addr, readTok, "ringkv_requests_total", `proto="http"`, `op="leave"`, `status="400"`); n != 1 {
		t.Errorf("the leave was not answered 400 (last node): %v with 400", n)
	}
}
