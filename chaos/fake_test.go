package chaos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// register is one key of a correct single-copy store with siblings:
// every answer shows all live values and a context covering exactly them,
// as a ringkv node does.
type register struct {
	sib vclock.Siblings
}

const fakeActor = "fake"

func (r *register) get() (vals []string, ctx vclock.Clock) {
	return liveValues(r.sib), r.sib.Context()
}

// put mints a write and returns the new set; the caller decides whether
// to keep it.
func (r *register) put(value string, ctx vclock.Clock, blind bool) vclock.Siblings {
	_, merged := vclock.Mint(r.sib, fakeActor, vclock.Write{Context: ctx, Blind: blind, Value: []byte(value), WallTime: time.Now().UnixNano()})
	return merged
}

func liveValues(s vclock.Siblings) []string {
	var vals []string
	for _, v := range s.Live() {
		vals = append(vals, string(v.Value))
	}
	return vals
}

// fakeNode serves GET and PUT of /v1/kv/ from registers. lose, when set,
// is asked for each write: true makes the node answer as if it stored the
// write while keeping the old value.
type fakeNode struct {
	mu   sync.Mutex // guards regs and writes
	regs map[string]*register
	// writes counts PUTs per key.
	writes map[string]int
	lose   func(key string, n int) bool
}

func newFakeNode() *fakeNode {
	return &fakeNode{regs: map[string]*register{}, writes: map[string]int{}}
}

// start serves f on 127.0.0.1 until the test ends and returns its address.
func (f *fakeNode) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	esc, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/kv/")
	key, err := url.PathUnescape(esc)
	if !ok || err != nil || key == "" {
		http.Error(w, `{"error":"bad key"}`, http.StatusBadRequest)
		return
	}
	var ctx vclock.Clock
	hdr := r.Header.Get(contextHeader)
	if hdr != "" {
		if ctx, err = vclock.DecodeContextString(hdr); err != nil {
			http.Error(w, `{"error":"bad context"}`, http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	reg := f.regs[key]
	if reg == nil {
		reg = &register{}
		f.regs[key] = reg
	}
	var live []string
	var answerCtx vclock.Clock
	switch r.Method {
	case http.MethodGet:
		live, answerCtx = reg.get()
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		f.writes[key]++
		merged := reg.put(string(body), ctx, hdr == "")
		if f.lose == nil || !f.lose(key, f.writes[key]) {
			reg.sib = merged
		}
		live, answerCtx = liveValues(merged), merged.Context()
	default:
		f.mu.Unlock()
		http.Error(w, `{"error":"method"}`, http.StatusMethodNotAllowed)
		return
	}
	f.mu.Unlock()
	w.Header().Set(contextHeader, vclock.EncodeContextString(answerCtx))
	switch {
	case len(live) > 1:
		var sb struct {
			Siblings []map[string]string `json:"siblings"`
			Context  string              `json:"context"`
		}
		for _, v := range live {
			sb.Siblings = append(sb.Siblings, map[string]string{"value": base64.StdEncoding.EncodeToString([]byte(v))})
		}
		sb.Context = vclock.EncodeContextString(answerCtx)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultipleChoices)
		_ = json.NewEncoder(w).Encode(sb)
	case r.Method == http.MethodPut:
		w.WriteHeader(http.StatusNoContent)
	case len(live) == 0:
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	default:
		_, _ = io.WriteString(w, live[0])
	}
}

// simulate makes a history of n operations of clients on keys against a
// correct store, one operation at a time, each taking a microsecond, the
// way the workload's context mode behaves. Every key is seeded first.
func simulate(seed uint64, n, keys, clients int) ([]Op, []FinalRead) {
	rng := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	regs := make([]register, keys)
	type state struct {
		ctx   vclock.Clock
		known []string
		has   bool
	}
	st := make([][]state, clients)
	for c := range st {
		st[c] = make([]state, keys)
	}
	var ops []Op
	at := func() (time.Time, time.Time) {
		s := t0.Add(time.Duration(len(ops)) * time.Microsecond)
		return s, s.Add(time.Microsecond / 2)
	}
	for k := range keys {
		s, e := at()
		v := fmt.Sprintf("seed/%d", k)
		regs[k].sib = regs[k].put(v, nil, true)
		ops = append(ops, Op{Client: -1, Kind: Write, Key: fmt.Sprint(k), Value: v, Blind: true, Start: s, End: e, Outcome: OK})
	}
	for i := 0; len(ops) < n; i++ {
		c, k := rng.IntN(clients), rng.IntN(keys)
		s, e := at()
		cs := &st[c][k]
		if !cs.has || rng.IntN(10) < 3 {
			vals, ctx := regs[k].get()
			ops = append(ops, Op{Client: c, Kind: Read, Key: fmt.Sprint(k), Values: vals, Start: s, End: e, Outcome: OK})
			*cs = state{ctx: ctx, known: vals, has: true}
			continue
		}
		v := fmt.Sprintf("%d/%d", c, i)
		merged := regs[k].put(v, cs.ctx, false)
		regs[k].sib = merged
		ops = append(ops, Op{Client: c, Kind: Write, Key: fmt.Sprint(k), Value: v, Known: cs.known, Start: s, End: e, Outcome: OK})
		vals := liveValues(merged)
		if len(vals) == 1 {
			vals = []string{v}
		}
		*cs = state{ctx: merged.Context(), known: vals, has: true}
	}
	finals := make([]FinalRead, keys)
	for k := range keys {
		vals, _ := regs[k].get()
		finals[k] = FinalRead{Key: fmt.Sprint(k), Values: vals}
	}
	return ops, finals
}
