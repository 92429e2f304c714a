package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/ringkv/ringkv/client"
)

// recoverHTTP wraps the HTTP handler so that a panicking request is logged
// at error level with its method and path, and counted in
// ringkv_recovered_panics_total{listener="http"}. net/http would recover
// it too, but log it unstructured and uncounted and cut the connection.
// A request that had written nothing yet answers 500; one that had
// started its answer is aborted, so that a truncated answer never looks
// complete. http.ErrAbortHandler, net/http's deliberate abort, passes as
// is.
func recoverHTTP(h http.Handler, m *metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := &wroteWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http compares it the same way
				panic(v)
			}
			m.panicked("http")
			log.Error("panic recovered", "listener", "http", "method", r.Method, "path", r.URL.EscapedPath(),
				"remote", r.RemoteAddr, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if ww.wrote {
				panic(http.ErrAbortHandler)
			}
			writeError(w, http.StatusInternalServerError, client.ErrorBody{Error: "internal error"})
		}()
		h.ServeHTTP(ww, r)
	})
}

// wroteWriter remembers whether the handler began its answer. Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines.
type wroteWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *wroteWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx informational answers do not start the final one
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *wroteWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush passes through: streaming handlers type-assert http.Flusher.
func (w *wroteWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *wroteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
