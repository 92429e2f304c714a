package replica_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps replica a leaf below node: replica (and its test
// fakes) import only vclock and ring of this module (and the internal
// filesystem seam, vfs and atomicfile, and the msgpack guard, wire), reach storage, gossip
// and hints only through interfaces, and never import node or cmd. go list reads imports without compiling,
// so this holds even while other packages are mid-edit.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./replicatest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/ringkv/ringkv/"
	allowed := map[string]bool{mod + "vclock": true, mod + "ring": true, mod + "internal/vfs": true, mod + "internal/atomicfile": true, mod + "internal/wire": true, mod + "replica": true, mod + "replica/replicatest": true}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && !allowed[p] {
			t.Errorf("replica depends on %s", p)
		}
	}
}
