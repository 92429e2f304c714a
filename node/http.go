package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/vclock"
)

// kvPrefix is the path prefix of the client API. Everything after it is the
// key, percent-decoded from the escaped path, so that any byte string
// (slashes, "..", spaces) can be a key without net/http's path cleaning
// redirecting the request.
const kvPrefix = "/v1/kv/"

// bodyMargin is what a request body may exceed limits.max_value_bytes by
// before the server stops reading it; the value check itself is exact.
const bodyMargin = 64 << 10

// httpAPI serves the client and admin HTTP routes. It holds no state of
// its own beyond its dependencies, so one value serves all connections.
type httpAPI struct {
	kv      kvBackend
	admin   adminBackend
	metrics *metrics
	limits  LimitsConfig
	n       int // cluster.replication, the bound of numeric r and w
	log     *slog.Logger
	// ready reports whether the node serves client requests; until it
	// does, the /v1/kv/ routes answer 503 (ready.go). nil: always.
	ready func() bool
	// pprof serves /debug/pprof/ (debug.pprof).
	pprof bool
	// gate admits requests by peer and token (auth_gate.go); nil
	// admits everyone.
	gate *gate
	// keyring serves the gossip key routes; nil leaves them out.
	keyring keyringBackend
}

// routeSet selects which routes a listener serves.
type routeSet int

const (
	// routesAll: listen.http without listen.admin, everything.
	routesAll routeSet = iota
	// routesClient: listen.http when listen.admin is set: /v1/kv/ and
	// the probes.
	routesClient
	// routesAdmin: listen.admin: the operator routes, metrics, pprof and
	// the probes.
	routesAdmin
)

// handler returns the root handler of a listener serving every route.
func (a *httpAPI) handler() http.Handler { return a.handlerFor(routesAll) }

// handlerFor returns the root handler of a listener serving set: client
// routes, admin routes, health and metrics, with the body cap applied to
// every request and each route behind the role it needs (auth_http.go).
// The probes are open to all, so that orchestrators need no token.
func (a *httpAPI) handlerFor(set routeSet) http.Handler {
	mux := http.NewServeMux()
	if set != routesClient {
		mux.Handle("GET /v1/members", a.instrument("members", a.authorize(RoleRead, noQuery(a.members))))
		mux.Handle("GET /v1/ring", a.instrument("ring", a.authorize(RoleRead, a.ring)))
		mux.Handle("GET /v1/stats", a.instrument("stats", a.authorize(RoleRead, noQuery(a.stats))))
		mux.Handle("GET /v1/aae", a.instrument("aae", a.authorize(RoleRead, noQuery(a.aaeStatus))))
		mux.Handle("POST /v1/leave", a.instrument("leave", a.authorize(RoleAdmin, noQuery(a.leave))))
		mux.Handle("POST /v1/remove/{node}", a.instrument("remove", a.authorize(RoleAdmin, noQuery(a.remove))))
		mux.Handle("PUT /v1/transfer/rate", a.instrument("transfer_rate", a.authorize(RoleAdmin, a.transferRate)))
		// Scrapers on the admin listener need no token: that listener is
		// meant for a network only operators reach.
		metricsRole := RoleRead
		if set == routesAdmin {
			metricsRole = RoleNone
		}
		mux.Handle("GET /metrics", a.authorize(metricsRole, a.metrics.handler().ServeHTTP))
		if a.pprof {
			// Profiles and the command line are internals: admin only.
			mux.Handle("GET /debug/pprof/", a.authorize(RoleAdmin, pprof.Index))
			mux.Handle("GET /debug/pprof/cmdline", a.authorize(RoleAdmin, pprof.Cmdline))
			mux.Handle("GET /debug/pprof/profile", a.authorize(RoleAdmin, pprof.Profile))
			mux.Handle("GET /debug/pprof/symbol", a.authorize(RoleAdmin, pprof.Symbol))
			mux.Handle("GET /debug/pprof/trace", a.authorize(RoleAdmin, pprof.Trace))
		}
		a.consoleRoutes(mux)
		if a.keyring != nil {
			mux.Handle("GET /v1/gossip/keys", a.instrument("gossip_keys", a.authorize(RoleAdmin, noQuery(a.gossipKeys))))
			mux.Handle("PUT /v1/gossip/keys", a.instrument("gossip_keys", a.authorize(RoleAdmin, noQuery(a.setGossipKeys))))
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	maxBody := int64(a.limits.MaxValueBytes) + bodyMargin
	if set == routesAdmin {
		return a.crossOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			mux.ServeHTTP(w, r)
		}))
	}
	get := a.instrument("get", a.authorize(RoleRead, a.gated(a.get)))
	put := a.instrument("put", a.authorize(RoleReadWrite, a.gated(a.put)))
	del := a.instrument("delete", a.authorize(RoleReadWrite, a.gated(a.delete)))
	return a.crossOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if !strings.HasPrefix(r.URL.EscapedPath(), kvPrefix) {
			mux.ServeHTTP(w, r)
			return
		}
		kvHeaders(w.Header())
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			get.ServeHTTP(w, r)
		case http.MethodPut:
			put.ServeHTTP(w, r)
		case http.MethodDelete:
			del.ServeHTTP(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
			writeError(w, http.StatusMethodNotAllowed, client.ErrorBody{Error: "method " + r.Method + " not allowed on " + kvPrefix + "{key}"})
		}
	}))
}

// The headers of every /v1/kv/ answer, shared and never modified: a
// stored value is served as it was written, on the origin that may also
// serve the console, so a browser must neither guess it is HTML
// (nosniff) nor run anything in it if it is opened as a page (sandbox).
var (
	kvNoSniff = []string{"nosniff"}
	kvCSP     = []string{"sandbox; default-src 'none'"}
)

// kvHeaders sets the headers of every /v1/kv/ answer.
func kvHeaders(h http.Header) {
	h["X-Content-Type-Options"] = kvNoSniff
	h["Content-Security-Policy"] = kvCSP
}

// statusRecorder remembers the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// instrument counts and times a route under op. A request whose handler
// panics is counted too, as 500: recoverHTTP, further out, answers 500 or
// cuts the connection, and the panic goes on to it untouched.
func (a *httpAPI) instrument(op string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		returned := false
		defer func() {
			status := rec.status
			switch {
			case !returned:
				status = http.StatusInternalServerError
			case status == 0:
				status = http.StatusOK
			}
			a.metrics.observe("http", op, fmt.Sprint(status), time.Since(start))
		}()
		h(rec, r)
		returned = true
	})
}

// key extracts and checks the key of a /v1/kv/ request.
func (a *httpAPI) key(r *http.Request) ([]byte, error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), kvPrefix)
	k, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("key is not a valid percent-encoded path segment: %v", err)
	}
	return []byte(k), checkKey([]byte(k), a.limits)
}

// checkKey enforces the key limits shared by HTTP and RESP.
func checkKey(k []byte, l LimitsConfig) error {
	if len(k) == 0 {
		return errors.New("key must not be empty")
	}
	if len(k) > l.MaxKeyBytes {
		return fmt.Errorf("key is %d bytes, more than limits.max_key_bytes (%d)", len(k), l.MaxKeyBytes)
	}
	return nil
}

// queryParams parses the request's query strictly: a malformed query, a
// name not in allowed (names are case-sensitive, so ?R= is refused, not
// ignored) or a name given twice is an error for a 400.
func queryParams(r *http.Request, allowed ...string) (url.Values, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query is not valid: %v", err)
	}
	for name, vs := range vals {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return nil, fmt.Errorf("unknown query parameter %q: this route takes none", truncateString(name, 64))
			}
			return nil, fmt.Errorf("unknown query parameter %q: this route takes %s", truncateString(name, 64), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", name, len(vs))
		}
	}
	return vals, nil
}

// noQuery refuses a request to h that has query parameters: h takes none.
func noQuery(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := queryParams(r); err != nil {
			writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
			return
		}
		h(w, r)
	}
}

// quorumParam reads ?r= or ?w= from vals with the parser the config uses
// and checks it against N. It returns the canonical spelling ("" for the
// configured default).
func (a *httpAPI) quorumParam(vals url.Values, name string) (string, error) {
	q, err := checkQuorum(vals.Get(name), a.n)
	if err != nil {
		return "", fmt.Errorf("parameter %s %v", name, err)
	}
	return q.String(), nil
}

// contextHeader reads the optional causal context header. present is
// false for a blind write: no header, or an empty one (a client that
// always sends the header, with nothing in it before its first read,
// means no context, not an empty one that would add a sibling per write).
func contextHeader(r *http.Request) (c vclock.Clock, present bool, err error) {
	vals := r.Header.Values(client.ContextHeader)
	if len(vals) == 0 {
		return nil, false, nil
	}
	if len(vals) > 1 {
		return nil, true, fmt.Errorf("header %s given %d times", client.ContextHeader, len(vals))
	}
	v := strings.TrimSpace(vals[0])
	if v == "" {
		return nil, false, nil
	}
	c, err = vclock.DecodeContextString(v)
	if err != nil {
		return nil, true, fmt.Errorf("header %s: %v", client.ContextHeader, err)
	}
	return c, true, nil
}

// get serves GET /v1/kv/{key}.
func (a *httpAPI) get(w http.ResponseWriter, r *http.Request) {
	key, err := a.key(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	vals, err := queryParams(r, "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	rq, err := a.quorumParam(vals, "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	res, err := a.kv.Get(r.Context(), key, rq)
	if err != nil {
		a.backendError(w, "get", err)
		return
	}
	rc := res.Context()
	w.Header().Set(client.ContextHeader, vclock.EncodeContextString(rc))
	live := res.Siblings.Live()
	switch len(live) {
	case 0:
		writeError(w, http.StatusNotFound, client.ErrorBody{Error: "not found"})
	case 1:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(live[0].Value)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(live[0].Value)
		}
	default:
		writeJSON(w, http.StatusMultipleChoices, siblingsBody(live, rc))
	}
}

// siblingsBody is the 300 answer listing live versions and the context
// that supersedes them all.
func siblingsBody(live vclock.Siblings, c vclock.Clock) client.SiblingsBody {
	body := client.SiblingsBody{Context: vclock.EncodeContextString(c), Siblings: make([]client.Sibling, len(live))}
	for i, v := range live {
		body.Siblings[i] = siblingJSON(v)
	}
	return body
}

// siblingJSON is one version as the API shows it: its value, wall time
// and dot.
func siblingJSON(v vclock.Version) client.Sibling {
	return client.Sibling{
		Value:    v.Value,
		WallTime: time.Unix(0, v.WallTime).UTC().Format(time.RFC3339Nano),
		Dot:      fmt.Sprintf("%s:%d", v.Dot.Actor, v.Dot.Counter),
	}
}

// writeAnswer answers an acknowledged PUT or DELETE. The returned context
// covers the coordinator's whole merged set, so it may only be handed to a
// client that is shown that set: when live versions other than the one
// just written remain (concurrent writes the client never saw), the answer
// is 300 with every live version, as a GET would give; otherwise 204. A
// client that reuses the context of a 204 therefore never supersedes a
// version it was not shown.
func writeAnswer(w http.ResponseWriter, res kvResult, deleted bool) {
	rc := res.Context()
	w.Header().Set(client.ContextHeader, vclock.EncodeContextString(rc))
	live := res.Siblings.Live()
	if len(live) > 1 || (deleted && len(live) > 0) {
		writeJSON(w, http.StatusMultipleChoices, siblingsBody(live, rc))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeArgs parses what PUT and DELETE share: key, w and context.
func (a *httpAPI) writeArgs(r *http.Request) (key []byte, wq string, c vclock.Clock, hasCtx bool, err error) {
	if key, err = a.key(r); err != nil {
		return nil, "", nil, false, err
	}
	vals, err := queryParams(r, "w")
	if err != nil {
		return nil, "", nil, false, err
	}
	if wq, err = a.quorumParam(vals, "w"); err != nil {
		return nil, "", nil, false, err
	}
	c, hasCtx, err = contextHeader(r)
	return key, wq, c, hasCtx, err
}

// put serves PUT /v1/kv/{key}.
func (a *httpAPI) put(w http.ResponseWriter, r *http.Request) {
	key, wq, c, hasCtx, err := a.writeArgs(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	limit := a.limits.MaxValueBytes
	if r.ContentLength > int64(limit) {
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge(r.ContentLength, limit))
		return
	}
	value, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge(mbe.Limit, limit))
			return
		}
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: "reading body: " + err.Error()})
		return
	}
	if len(value) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge(int64(len(value)), limit))
		return
	}
	if value == nil {
		value = []byte{} // an empty value is a value, not a tombstone
	}
	res, err := a.kv.Put(r.Context(), key, value, wq, c, hasCtx)
	if err != nil {
		a.backendError(w, "put", err)
		return
	}
	writeAnswer(w, res, false)
}

func tooLarge(n int64, limit int) client.ErrorBody {
	return client.ErrorBody{Error: fmt.Sprintf("value is more than limits.max_value_bytes (%d bytes; got at least %d)", limit, n)}
}

// delete serves DELETE /v1/kv/{key}.
func (a *httpAPI) delete(w http.ResponseWriter, r *http.Request) {
	key, wq, c, hasCtx, err := a.writeArgs(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	res, err := a.kv.Delete(r.Context(), key, wq, c, hasCtx)
	if err != nil {
		a.backendError(w, "delete", err)
		return
	}
	writeAnswer(w, res, true)
}

// backendError maps a coordinator error to a status and body.
func (a *httpAPI) backendError(w http.ResponseWriter, op string, err error) {
	var qf *quorumFailure
	switch {
	case errors.As(err, &qf):
		a.metrics.quorumFailed(op)
		got := qf.Got
		writeError(w, http.StatusServiceUnavailable, client.ErrorBody{Error: qf.Error(), Need: qf.Need, Got: &got, Failures: qf.Failures,
			Pending: qf.Pending, Unavailable: qf.Unavailable, Reachable: qf.Reachable})
	case errors.Is(err, errTooManySiblings):
		writeError(w, http.StatusConflict, client.ErrorBody{Error: err.Error()})
	case errors.Is(err, errBadQuorum), errors.Is(err, errBadRequest), errors.Is(err, vclock.ErrBadContext):
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		zero := 0
		writeError(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "request canceled", Got: &zero})
	default:
		a.log.Error("request failed", "op", op, "err", err)
		writeError(w, http.StatusInternalServerError, client.ErrorBody{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, e client.ErrorBody) { writeJSON(w, code, e) }
