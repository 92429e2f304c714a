package layers

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ringkv/ringkv"

// row is one line of README's layer table: a package (a directory, which
// covers its subpackages too: storage/ covers storage/storagetest) and the
// module packages it may import.
type row struct {
	pkg     string
	imports []string
}

// readTable parses the table under "The layers" in README.md: rows of the
// form | `pkg/` | what it holds | `a`, `b` or "none" |.
func readTable(t *testing.T) []row {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "| package | what it holds | may import |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "| ---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("README layer table row %q: want 3 cells", line)
		}
		r := row{pkg: strings.TrimSuffix(strings.Trim(strings.TrimSpace(cells[0]), "`"), "/")}
		if deps := strings.TrimSpace(cells[2]); deps != "none" {
			for _, d := range strings.Split(deps, ",") {
				r.imports = append(r.imports, strings.TrimSuffix(strings.Trim(strings.TrimSpace(d), "`"), "/"))
			}
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no layer table (a header | package | what it holds | may import |)")
	}
	return rows
}

// pkgInfo is what go list says of one package.
type pkgInfo struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	// Error is set when the package could not be loaded: its imports may
	// then be partial.
	Error *struct{ Err string }
}

// mustList are packages the module's listing must hold: without them the
// pattern matched something else, and the graph check would check nothing.
var mustList = []string{"client", "node", "internal/layers"}

// loadProblems says why a listing cannot be trusted: nothing listed, a
// package that failed to load, or a package that must be there missing.
func loadProblems(pkgs []pkgInfo) []string {
	var out []string
	if len(pkgs) == 0 {
		return []string{"go list matched no packages of " + module}
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = true
		if p.Error != nil {
			out = append(out, fmt.Sprintf("%s does not load: %s", p.ImportPath, p.Error.Err))
		}
	}
	for _, m := range mustList {
		if !seen[m] {
			out = append(out, "go list did not list "+m)
		}
	}
	return out
}

// listPackages runs go list over pattern, and fails the test on a listing
// loadProblems rejects. go list reads imports without compiling, so this
// holds even while other packages are mid-edit; -e reports a package that
// does not load in its Error field instead of stopping.
func listPackages(t *testing.T, pattern string, env ...string) []pkgInfo {
	t.Helper()
	pkgs := goList(t, pattern, env...)
	for _, p := range loadProblems(pkgs) {
		t.Error(p)
	}
	if t.Failed() {
		t.FailNow()
	}
	return pkgs
}

// goList is go list's JSON for pattern, run at the module's root with env
// added to the environment (GOOS, GOFLAGS).
func goList(t *testing.T, pattern string, env ...string) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", pattern)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rowOf is the row that covers pkg (module-relative): the longest row
// whose package is pkg or a parent directory of it.
func rowOf(rows []row, pkg string) (row, bool) {
	var best row
	found := false
	for _, r := range rows {
		if (pkg == r.pkg || strings.HasPrefix(pkg, r.pkg+"/")) && len(r.pkg) >= len(best.pkg) {
			best, found = r, true
		}
	}
	return best, found
}

// testsToo are rows whose rule holds their tests as well: e2e drives the
// binary over the wire and must not reach into the code it tests; deploy
// is only tests, which reach the code through the packages its row names.
var testsToo = map[string]bool{"e2e": true, "deploy": true}

// TestImportGraph holds every package of the module to its row of README's
// layer table: a package imports, of this module, only what its row names
// (and its own subpackages). A package no row covers fails too, so a new
// package is placed in the table when it is added.
//
// Each build is listed: the default one, the deliberately broken one the
// chaos test uses, and a non-unix one, so that files behind build
// constraints are held too.
func TestImportGraph(t *testing.T) {
	rows := readTable(t)
	for _, env := range [][]string{nil, {"GOFLAGS=-tags=ringkvbroken"}, {"GOOS=windows"}} {
		name := "default"
		if len(env) > 0 {
			name = strings.Join(env, ",")
		}
		t.Run(name, func(t *testing.T) {
			checkGraph(t, rows, listPackages(t, module+"/...", env...))
		})
	}
}

// checkGraph holds each package of pkgs to its row.
func checkGraph(t *testing.T, rows []row, pkgs []pkgInfo) {
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := rowOf(rows, rel)
		if !ok {
			t.Errorf("%s is in no row of README's layer table: add it, with what it may import", rel)
			continue
		}
		imports := p.Imports
		if testsToo[r.pkg] {
			imports = slices.Concat(p.Imports, p.TestImports, p.XTestImports)
		}
		for _, imp := range imports {
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours || dep == rel || dep == r.pkg || strings.HasPrefix(dep, r.pkg+"/") {
				continue
			}
			if !allowed(r, dep) {
				t.Errorf("%s imports %s, which README's layer table does not allow (row %s: %v)", rel, dep, r.pkg, r.imports)
			}
		}
	}
}

// allowed reports whether a package of row r may import dep: dep is a
// listed package or one of its subpackages.
func allowed(r row, dep string) bool {
	for _, a := range r.imports {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return true
		}
	}
	return false
}

// TestTableParses guards the parser itself: rows must be read, and the
// leaves named as such.
func TestTableParses(t *testing.T) {
	rows := readTable(t)
	for _, leaf := range []string{"internal/httpclient", "internal/wire", "internal/vfs", "internal/fnv1a"} {
		r, ok := rowOf(rows, leaf)
		if !ok || r.pkg != leaf || len(r.imports) != 0 {
			t.Errorf("row %s: %+v (found %v), want a leaf row importing none", leaf, r, ok)
		}
	}
	if !allowed(row{pkg: "node", imports: []string{"storage"}}, "storage/storagetest") || allowed(row{pkg: "node", imports: []string{"ring"}}, "ringx") {
		t.Error("allowed matches wrong subpackages")
	}
}

// TestListingIsChecked: a listing that matched nothing (the module path
// changed), or holds a package that did not load, fails instead of
// checking nothing.
func TestListingIsChecked(t *testing.T) {
	if p := loadProblems(goList(t, module+"X/...")); len(p) == 0 {
		t.Error("a pattern matching no package passed")
	}
	broken := []pkgInfo{{ImportPath: module + "/client"}, {ImportPath: module + "/node"},
		{ImportPath: module + "/internal/layers", Error: &struct{ Err string }{"syntax error"}}}
	if p := loadProblems(broken); len(p) != 1 || !strings.Contains(p[0], "syntax error") {
		t.Errorf("a package that does not load: %q, want one problem naming it", p)
	}
	if p := loadProblems(broken[:2]); len(p) != 1 || !strings.Contains(p[0], "internal/layers") {
		t.Errorf("a listing without internal/layers: %q, want one problem naming it", p)
	}
	if p := loadProblems(goList(t, module+"/...")); len(p) != 0 {
		t.Errorf("the module's own listing: %q", p)
	}
}
