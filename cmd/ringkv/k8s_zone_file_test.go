package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// TestK8sZoneOutputFile: the config replaces the old one whole, with mode
// 0644 (less the umask) whatever a torn temp file of an interrupted run
// had, and that temp file is gone.
func TestK8sZoneOutputFile(t *testing.T) {
	f := newK8sFake(t)
	args, out := f.args(t, "worker", "seeds: []\n")
	if err := os.WriteFile(out, []byte("node:\n  zone: old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".tmp", []byte("node:\n  zo"), 0o666); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "", args...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if node, _ := readOut(t, out)["node"].(map[string]any); node["zone"] != "zone-a" {
		t.Errorf("wrote node %v, want zone zone-a", node)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Errorf("%s has mode %#o, want 0644 less the umask", out, perm)
	}
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the torn temporary file is left behind (%v)", err)
	}
}

// TestK8sZoneBaseTooLarge: a --base over its limit is refused unparsed,
// naming the file, and nothing is written.
func TestK8sZoneBaseTooLarge(t *testing.T) {
	f := newK8sFake(t)
	args, out := f.args(t, "worker", "seeds: []\n#"+strings.Repeat("x", k8sConfigBytes))
	code, _, stderr := runCLI(t, "", args...)
	if code != 1 || !strings.Contains(stderr, "base.yaml is larger than") {
		t.Fatalf("exit %d %q, want 1 naming base.yaml as too large", code, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused run wrote %s (%v)", out, err)
	}
}
