package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/ringkv/ringkv/node"
)

// configsDir is the repository's configs/ directory, relative to this
// package.
const configsDir = "../../configs"

// TestConfigsLoad loads every example config through the server's loader
// and validator, so that none of them can rot.
func TestConfigsLoad(t *testing.T) {
	clearRingkvEnv(t)
	files, err := filepath.Glob(filepath.Join(configsDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dev-node1.yaml", "dev-node2.yaml", "dev-node3.yaml", "production.yaml", "single.yaml"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("configs/ files (-want +got):\n%s", diff)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := loadConfig(f, nil)
			if err != nil {
				t.Fatalf("loadConfig(%s): %v", f, err)
			}
			if cfg.Node.Name == "" {
				t.Fatalf("%s: empty node.name", f)
			}
		})
	}
}

// TestDevConfigsMatchDevPlan checks that configs/dev-node*.yaml describe the
// cluster "ringkv dev" starts, so that running the files by hand gives the
// same cluster.
func TestDevConfigsMatchDevPlan(t *testing.T) {
	clearRingkvEnv(t)
	for _, n := range devPlan("./ringkv-data", 3) {
		t.Run(n.Name, func(t *testing.T) {
			cfg, err := loadConfig(filepath.Join(configsDir, "dev-node"+strings.TrimPrefix(n.Name, "n")+".yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := devNode{
				Name: cfg.Node.Name, HTTP: cfg.Listen.HTTP, RESP: cfg.Listen.RESP, RPC: cfg.Listen.RPC, Gossip: cfg.Listen.Gossip,
				DataDir: filepath.Clean(cfg.Node.DataDir), Log: n.Log, Seeds: cfg.Seeds,
			}
			if diff := cmp.Diff(n, got); diff != "" {
				t.Errorf("dev config differs from ringkv dev's plan (-plan +file):\n%s", diff)
			}
			if cfg.Gossip.Profile != "local" || cfg.Cluster.Replication != 3 {
				t.Errorf("gossip.profile=%q cluster.replication=%d, want local and 3", cfg.Gossip.Profile, cfg.Cluster.Replication)
			}
		})
	}
}

// TestProductionNamesEveryKey checks that configs/production.yaml spells
// out exactly the keys of node.Config, found by reflecting over its
// mapstructure tags, and that each value it shows is the default.
func TestProductionNamesEveryKey(t *testing.T) {
	clearRingkvEnv(t)
	path := filepath.Join(configsDir, "production.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := strings.TrimPrefix(prefix+"."+k, ".")
			if sub, ok := v.(map[string]any); ok {
				walk(key, sub)
				continue
			}
			inFile = append(inFile, key)
		}
	}
	walk("", doc)
	sort.Strings(inFile)
	var want []string
	for _, k := range configKeys() {
		want = append(want, k.Key)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, inFile); diff != "" {
		t.Errorf("keys of production.yaml differ from node.Config (-struct +file):\n%s", diff)
	}
	// Every key has a comment line above it, which is where its meaning is.
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") || strings.HasPrefix(trim, "- ") || !strings.Contains(trim, ":") {
			continue
		}
		if strings.HasSuffix(trim, ":") { // a section header
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("production.yaml line %d %q has no comment above it", i+1, trim)
		}
	}
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(node.DefaultConfig(), cfg, cmpEmptySlices); diff != "" {
		t.Errorf("production.yaml values differ from node.DefaultConfig() (-default +file):\n%s", diff)
	}
}

// cmpEmptySlices treats nil and empty slices (seeds: [], tokens: []) as equal.
var cmpEmptySlices = cmp.Options{
	cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Comparer(func(_, _ []string) bool { return true })),
	cmp.FilterValues(func(a, b []node.TokenConfig) bool { return len(a) == 0 && len(b) == 0 }, cmp.Comparer(func(_, _ []node.TokenConfig) bool { return true })),
}

func TestConfigKeysCoverStruct(t *testing.T) {
	keys := configKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Key] {
			t.Errorf("duplicate key %s", k.Key)
		}
		seen[k.Key] = true
	}
	for _, k := range []string{"node.name", "listen.http", "seeds", "quorum.timeout", "storage.tombstone_gc", "log.format"} {
		if !seen[k] {
			t.Errorf("configKeys() lacks %s", k)
		}
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	writeFile(t, file, "node:\n  name: fromfile\nlisten:\n  http: 127.0.0.1:1111\n  resp: 127.0.0.1:2222\nquorum:\n  timeout: 5s\n")
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c node.Config)
	}{
		{"file over defaults", nil, nil, func(t *testing.T, c node.Config) {
			want := node.DefaultConfig()
			want.Node.Name = "fromfile"
			want.Listen.HTTP, want.Listen.RESP = "127.0.0.1:1111", "127.0.0.1:2222"
			want.Quorum.Timeout = 5 * time.Second
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"env over file", map[string]string{"RINGKV_LISTEN_HTTP": "127.0.0.1:3333", "RINGKV_QUORUM_TIMEOUT": "7s"}, nil, func(t *testing.T, c node.Config) {
			if c.Listen.HTTP != "127.0.0.1:3333" || c.Quorum.Timeout != 7*time.Second || c.Listen.RESP != "127.0.0.1:2222" {
				t.Errorf("http=%s timeout=%s resp=%s", c.Listen.HTTP, c.Quorum.Timeout, c.Listen.RESP)
			}
		}},
		{"flag over env", map[string]string{"RINGKV_LISTEN_HTTP": "127.0.0.1:3333", "RINGKV_NODE_NAME": "fromenv"}, []string{"--http", "127.0.0.1:4444"}, func(t *testing.T, c node.Config) {
			if c.Listen.HTTP != "127.0.0.1:4444" || c.Node.Name != "fromenv" {
				t.Errorf("http=%s name=%s", c.Listen.HTTP, c.Node.Name)
			}
		}},
		{"seeds from env and flag", map[string]string{"RINGKV_SEEDS": "127.0.0.1:9002,127.0.0.1:9003"}, nil, func(t *testing.T, c node.Config) {
			if diff := cmp.Diff([]string{"127.0.0.1:9002", "127.0.0.1:9003"}, c.Seeds); diff != "" {
				t.Errorf("seeds (-want +got):\n%s", diff)
			}
		}},
		{"seeds flag", nil, []string{"--seeds", "127.0.0.1:9005,127.0.0.1:9006", "--name", "f", "--data-dir", "/tmp/x"}, func(t *testing.T, c node.Config) {
			if diff := cmp.Diff([]string{"127.0.0.1:9005", "127.0.0.1:9006"}, c.Seeds); diff != "" {
				t.Errorf("seeds (-want +got):\n%s", diff)
			}
			if c.Node.Name != "f" || c.Node.DataDir != "/tmp/x" {
				t.Errorf("name=%s data_dir=%s", c.Node.Name, c.Node.DataDir)
			}
			if c.Bootstrap {
				t.Error("bootstrap set without the flag")
			}
		}},
		{"bootstrap flag", nil, []string{"--seeds", "127.0.0.1:9005", "--bootstrap"}, func(t *testing.T, c node.Config) {
			if !c.Bootstrap {
				t.Error("--bootstrap did not set bootstrap")
			}
		}},
		{"bootstrap env", map[string]string{"RINGKV_BOOTSTRAP": "true"}, nil, func(t *testing.T, c node.Config) {
			if !c.Bootstrap {
				t.Error("RINGKV_BOOTSTRAP did not set bootstrap")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearRingkvEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
			addServerFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(file, fs)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestLoadConfigEnvWithoutFile checks that every key is reachable from the
// environment alone, with no file naming it.
func TestLoadConfigEnvWithoutFile(t *testing.T) {
	clearRingkvEnv(t)
	t.Setenv("RINGKV_NODE_NAME", "envnode")
	t.Setenv("RINGKV_STORAGE_FSYNC", "interval")
	t.Setenv("RINGKV_HINTS_MAX_BYTES_PER_TARGET", "12345")
	t.Setenv("RINGKV_QUORUM_SLOPPY", "false")
	c, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := node.DefaultConfig()
	want.Node.Name = "envnode"
	want.Storage.Fsync = "interval"
	want.Hints.MaxBytesPerTarget = 12345
	want.Quorum.Sloppy = false
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown key", "storage:\n  fsnc: none\n", nil, []string{`unknown key "storage.fsnc"`}},
		{"unknown section", "stroage:\n  fsync: none\n", nil, []string{`unknown key "stroage.fsync"`}},
		{"two unknown keys", "nodes: 3\nlisten:\n  htp: x\n", nil, []string{`"listen.htp"`, `"nodes"`}},
		{"section as value", "node: n1\n", nil, []string{`"node" is a section`}},
		{"invalid value", "storage:\n  fsync: sometimes\n", nil, []string{"storage.fsync", "sometimes"}},
		{"bad address", "listen:\n  http: nope\n", nil, []string{"listen.http", "nope"}},
		{"bad type", "cluster:\n  partitions: many\n", nil, []string{"partitions"}},
		{"bad duration", "quorum:\n  timeout: soon\n", nil, []string{"timeout"}},
		{"invalid from env", "", map[string]string{"RINGKV_QUORUM_W": "most"}, []string{"quorum.w", "most"}},
		{"not yaml", "node: [unclosed\n", nil, []string{"read config file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearRingkvEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := filepath.Join(t.TempDir(), "c.yaml")
			writeFile(t, file, tt.yaml)
			_, err := loadConfig(file, nil)
			if err == nil {
				t.Fatal("loadConfig succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := loadConfig(filepath.Join(t.TempDir(), "nope.yaml"), nil)
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Fatalf("err = %v, want one naming the file", err)
		}
	})
}

func TestLookupEnvKeys(t *testing.T) {
	clearRingkvEnv(t)
	t.Setenv("RINGKV_NODE_NAME", "ok")
	t.Setenv("RINGKV_LISTEN_HTPP", "typo")
	if diff := cmp.Diff([]string{"RINGKV_LISTEN_HTPP"}, lookupEnvKeys()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// clearRingkvEnv unsets every RINGKV_* variable for the test, so that the
// developer's environment cannot change the outcome.
func clearRingkvEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") {
			t.Setenv(name, "") // restores the value after the test
			os.Unsetenv(name)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
