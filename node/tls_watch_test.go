package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestTLSFileEvent: only events on the three files, or on a Kubernetes
// volume's data link beside them, lead to a reload.
func TestTLSFileEvent(t *testing.T) {
	files := tlsWatchedFiles(TLSConfig{CertFile: "/etc/ringkv/tls/n1.crt", KeyFile: "/etc/ringkv/tls/./n1.key", CAFile: "ca/ca.crt"})
	for path, want := range map[string]bool{
		"/etc/ringkv/tls/n1.crt":            true,
		"/etc/ringkv/tls/n1.key":            true,
		"ca/ca.crt":                         true,
		"/etc/ringkv/tls/..data":            true,
		"ca/..data":                         true,
		"/etc/ringkv/tls/wal-000001.log":    false,
		"/etc/ringkv/tls/.n1.crt.tmp123":    false,
		"/etc/ringkv/tls/..2026_12_03_data": false,
		"/etc/ringkv/..data":                false,
		"ca/n1.crt":                         false,
	} {
		if got := tlsFileEvent(files, path); got != want {
			t.Errorf("event on %s: reload %v, want %v", path, got, want)
		}
	}
}

// TestTLSReloadIfChanged: the watcher's reload skips files whose bytes
// did not change, without counting or logging; SIGHUP's reload always
// reads them; a change is loaded.
func TestTLSReloadIfChanged(t *testing.T) {
	dir := makeCerts(t, "n1")
	var buf testkit.Buffer
	nt, m := testTLS(t, dir, "n1", "n1")
	nt.log = slog.New(slog.NewTextHandler(&buf, nil))
	cert := filepath.Join(dir, "n1.crt")
	same, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(cert, same); err != nil {
		t.Fatal(err)
	}
	if err := nt.reloadFiles(true); err != nil {
		t.Fatal(err)
	}
	if ok, bad := counterValue(t, m, metricTLSReloads, "result", "ok"), counterValue(t, m, metricTLSReloads, "result", "error"); ok+bad != 0 || buf.Lines()[0] != "" {
		t.Fatalf("unchanged files reloaded: ok=%v error=%v, log %q", ok, bad, buf.Lines())
	}
	if err := nt.reload(); err != nil {
		t.Fatal(err)
	}
	if ok := counterValue(t, m, metricTLSReloads, "result", "ok"); ok != 1 {
		t.Fatalf("SIGHUP reload counted %v, want 1", ok)
	}
	before := nt.currentCert().Leaf.SerialNumber
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := nt.reloadFiles(true); err != nil {
		t.Fatal(err)
	}
	if nt.currentCert().Leaf.SerialNumber.Cmp(before) == 0 || counterValue(t, m, metricTLSReloads, "result", "ok") != 2 {
		t.Fatal("changed files were not loaded")
	}
}
