package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
)

func TestHealthCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			_, _ = io.WriteString(w, "ok\n")
		case "/moved":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		case "/notready":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not joined yet: this node has not reached a seed\nsecond line\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := testkit.RefusedAddr(t)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErrHas string
	}{
		{name: "ready", args: []string{"health", "--url", srv.URL + "/readyz"}, wantOut: "200 OK ok\n"},
		{name: "ready quiet", args: []string{"health", "--quiet", "--url", srv.URL + "/readyz"}},
		{name: "not ready", args: []string{"health", "--url", srv.URL + "/notready"}, wantCode: 1,
			wantErrHas: "503 Service Unavailable: not joined yet: this node has not reached a seed\n"},
		{name: "redirect not followed", args: []string{"health", "--url", srv.URL + "/moved"}, wantCode: 1, wantErrHas: "302 Found"},
		{name: "no such route", args: []string{"health", "--url", srv.URL + "/nope"}, wantCode: 1, wantErrHas: "404 Not Found"},
		{name: "unreachable", args: []string{"health", "--url", "http://" + closed + "/readyz"}, wantCode: 1, wantErrHas: "connection refused"},
		{name: "not a URL", args: []string{"health", "--url", "127.0.0.1:8001/readyz"}, wantCode: 2, wantErrHas: "--url must be an http:// or https:// URL"},
		{name: "bad timeout", args: []string{"health", "--timeout", "0s"}, wantCode: 2, wantErrHas: "--timeout must be positive"},
		{name: "argument", args: []string{"health", "extra"}, wantCode: 2, wantErrHas: "error:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.wantCode, out, errOut)
			}
			if out != tc.wantOut {
				t.Errorf("stdout %q, want %q", out, tc.wantOut)
			}
			if !strings.Contains(errOut, tc.wantErrHas) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.wantErrHas)
			}
		})
	}
}
