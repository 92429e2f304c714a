package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ringkv/ringkv/gossip"
)

// k8sFake is a fake API server: GET /api/v1/nodes/worker answers a node
// in zone-a, /api/v1/nodes/unauthorized 401, /forbidden 403 and /moved a
// redirect to /elsewhere, which counts its calls.
type k8sFake struct {
	url, ca, token string
	elsewhere      atomic.Int32
}

func newK8sFake(t *testing.T) *k8sFake {
	t.Helper()
	f := &k8sFake{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/nodes/worker":
			if r.Header.Get("Authorization") != "Bearer sa-token" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"labels": map[string]string{"topology.kubernetes.io/zone": "zone-a"}}})
		case "/api/v1/nodes/unauthorized":
			http.Error(w, `{"reason":"Unauthorized"}`, http.StatusUnauthorized)
		case "/api/v1/nodes/forbidden":
			http.Error(w, `{"reason":"Forbidden"}`, http.StatusForbidden)
		case "/api/v1/nodes/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/elsewhere":
			f.elsewhere.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"labels": map[string]string{"topology.kubernetes.io/zone": "zone-z"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	f.url, f.ca, f.token = srv.URL, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	if err := os.WriteFile(f.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.token, []byte("sa-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// args returns the k8s-zone command line for node, writing base to a new
// directory and the config to out in it.
func (f *k8sFake) args(t *testing.T, node, base string, extra ...string) (args []string, out string) {
	t.Helper()
	dir := t.TempDir()
	basePath, out := filepath.Join(dir, "base.yaml"), filepath.Join(dir, "out.yaml")
	if err := os.WriteFile(basePath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	args = []string{"k8s-zone", "--node", node, "--base", basePath, "--out", out,
		"--api-server", f.url, "--token-file", f.token, "--ca-file", f.ca}
	return append(args, extra...), out
}

// readOut parses the config k8s-zone wrote.
func readOut(t *testing.T, out string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("output is no YAML: %v\n%s", err, b)
	}
	return cfg
}

// The bootstrap pod gets bootstrap: true on every start (the server
// decides from its plan what that means on a restart), every other pod
// false whatever the base says; keys spelt in another case are replaced,
// not doubled; the data directory defaults to the base's node.data_dir.
func TestK8sZoneBootstrap(t *testing.T) {
	t.Setenv("RINGKV_NODE_DATA_DIR", "")
	f := newK8sFake(t)
	data := t.TempDir()
	base := "Bootstrap: true\nNode:\n  data_dir: " + data + "\n  Zone: old\n"
	for _, tc := range []struct {
		name, pod string
		state     bool
		bootstrap bool
		note      string
	}{
		{"bootstrap pod, first start", "ringkv-0", false, true, "holds no cluster state: a first start"},
		{"bootstrap pod, restart", "ringkv-0", true, true, "holds cluster state"},
		{"other pod", "ringkv-1", true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(data, gossip.StateFile)
			if tc.state {
				if err := os.WriteFile(state, []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(state); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			args, out := f.args(t, "worker", base, "--pod", tc.pod, "--bootstrap-pod", "ringkv-0")
			code, _, stderr := runCLI(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			cfg := readOut(t, out)
			want := map[string]any{"bootstrap": tc.bootstrap, "node": map[string]any{"data_dir": data, "zone": "zone-a"}}
			got, _ := json.Marshal(cfg)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("wrote %s, want %s", got, wantJSON)
			}
			if tc.note != "" && !strings.Contains(stderr, tc.note) {
				t.Errorf("message %q does not say %q", stderr, tc.note)
			}
		})
	}
}

// Refusals an operator can fix come with a hint; a redirect is not
// followed; a timeout that is not positive is a usage error; a failed
// write leaves no temporary file behind.
func TestK8sZoneErrors(t *testing.T) {
	f := newK8sFake(t)
	for _, tc := range []struct {
		name, node string
		extra      []string
		code       int
		want       string
	}{
		{"401", "unauthorized", nil, 1, "refused the token"},
		{"403", "forbidden", nil, 1, `needs "get" on nodes`},
		{"redirect", "moved", nil, 1, "302"},
		{"zero timeout", "worker", []string{"--timeout", "0s"}, 2, "--timeout must be positive"},
		{"negative timeout", "worker", []string{"--timeout", "-1s"}, 2, "--timeout must be positive"},
		{"bootstrap pod without pod", "worker", []string{"--bootstrap-pod", "ringkv-0"}, 2, "--bootstrap-pod needs --pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, out := f.args(t, tc.node, "seeds: []\n", tc.extra...)
			code, _, stderr := runCLI(t, "", args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d %q, want exit %d saying %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a failed run wrote %s (%v)", out, err)
			}
		})
	}
	if n := f.elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}

	t.Run("rename fails", func(t *testing.T) {
		args, out := f.args(t, "worker", "seeds: []\n")
		if err := os.MkdirAll(filepath.Join(out, "busy"), 0o755); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(t, "", args...); code != 1 {
			t.Fatalf("renaming over a non-empty directory: exit %d %q, want 1", code, stderr)
		}
		if _, err := os.Stat(out + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the temporary file is left behind (%v)", err)
		}
	})
}
