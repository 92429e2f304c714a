package deploy_test

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/ringkv/ringkv/gossip"
)

// zoneLabel is the label the scheduler spreads the pods by: the StatefulSet's
// zone anti-affinity term. The node's zone must come from the same label.
func zoneLabel(t *testing.T, s k8sSetup) string {
	t.Helper()
	aff := s.sts.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil {
		t.Fatal("the pods have no anti-affinity")
	}
	for _, w := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if strings.Contains(w.PodAffinityTerm.TopologyKey, "zone") {
			return w.PodAffinityTerm.TopologyKey
		}
	}
	for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if strings.Contains(term.TopologyKey, "zone") {
			return term.TopologyKey
		}
	}
	t.Fatal("no pod anti-affinity term spreads the pods by a zone label")
	return ""
}

// fakeAPIServer serves GET /api/v1/nodes/NAME as the Kubernetes API server
// does (the labels of a table of nodes), over TLS on 127.0.0.1, to the
// bearer token token only; it returns its URL and the CA file to trust.
func fakeAPIServer(t *testing.T, dir, token string, nodeLabels map[string]map[string]string) (string, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"kind":"Status","reason":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/nodes/")
		labels, known := nodeLabels[name]
		if r.Method != http.MethodGet || !ok || !known {
			http.Error(w, `{"kind":"Status","reason":"NotFound"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Node", "metadata": map[string]any{"name": name, "labels": labels}})
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(dir, "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, ca
}

// initRun is one run of the init container: the pod, the Kubernetes node
// it landed on, and whether its data volume holds a node's state.
type initRun struct {
	pod, k8sNode string
	hasState     bool
}

// runInit runs the init container's command (the built binary with the
// container's args, $(VAR) expanded from its environment) for run, with
// every path under /etc/ringkv/ and /data moved into root and the API
// server, token and CA pointed at the fake; it returns the config it wrote
// for the server (or its output and error).
func runInit(t *testing.T, s k8sSetup, init corev1.Container, root string, run initRun, api []string) (string, error) {
	t.Helper()
	if len(init.Command) != 0 || init.Image != s.c.Image {
		t.Fatalf("init container %s: want the server's image %s and its entrypoint (no command), got %s %v", init.Name, s.c.Image, init.Image, init.Command)
	}
	for _, d := range []string{"config", "run", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "config", "ringkv.yaml"), []byte(s.cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if run.hasState {
		if err := os.WriteFile(filepath.Join(root, "data", gossip.StateFile), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := podEnv(t, init, run.pod, map[string]bool{})
	env["K8S_NODE"] = run.k8sNode // the node this pod landed on
	var args []string
	for _, a := range init.Args {
		a = varRef.ReplaceAllStringFunc(a, func(ref string) string { return env[varRef.FindStringSubmatch(ref)[1]] })
		a = strings.ReplaceAll(a, "/etc/ringkv/", root+"/")
		if a == "/data" {
			a = filepath.Join(root, "data")
		}
		args = append(args, a)
	}
	code, out := runRingkv(t, append(args, api...)...)
	if code != 0 {
		return out, fmt.Errorf("exit %d", code)
	}
	b, err := os.ReadFile(filepath.Join(root, "run", "ringkv.yaml"))
	return string(b), err
}

func TestKubernetesZoneFromLabel(t *testing.T) {
	s := newK8sSetup(t)
	label := zoneLabel(t, s)
	spec := s.sts.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("want one init container (it writes the node's zone), got %d", len(spec.InitContainers))
	}
	init := spec.InitContainers[0]
	if env := podEnv(t, init, "p", map[string]bool{}); env["K8S_NODE"] != testK8sNode {
		t.Fatalf("init container: K8S_NODE must be the pod's spec.nodeName, got %q", env["K8S_NODE"])
	}
	if got, _ := flagValue(init.Args, "--label"); got != label {
		t.Errorf("init container --label %q, want %q (the label the pods are spread by)", got, label)
	}
	// The server reads the config the init container writes, from a
	// volume both mount at the same place; the init container sees the
	// server's data volume to say in its message whether ringkv-0 is on a
	// first start.
	cfgPath, ok := flagValue(s.c.Args, "--config")
	if !ok || !mountedAt(s.c, cfgPath) || !mountedAt(init, cfgPath) {
		t.Fatalf("the server's --config %q must be on a volume the init container mounts too", cfgPath)
	}
	if d, _ := flagValue(init.Args, "--data-dir"); d != s.env["RINGKV_NODE_DATA_DIR"] || !mountedAt(init, d+"/x") {
		t.Errorf("init container --data-dir %q: want the server's data directory %q, mounted", d, s.env["RINGKV_NODE_DATA_DIR"])
	}
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("sa-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, ca := fakeAPIServer(t, dir, "sa-token", map[string]map[string]string{
		"worker-1": {label: "zone-b"}, "worker-2": {label: "zone-c"},
		"worker-3": {label: "null"}, "worker-4": {label: "1"}, "worker-9": {"other": "x"},
	})
	api := []string{"--api-server", url, "--token-file", token, "--ca-file", ca}
	for _, tc := range []struct {
		run       initRun
		zone      string
		bootstrap bool
	}{
		{initRun{s.sts.Name + "-0", "worker-1", false}, "zone-b", true},
		{initRun{s.sts.Name + "-0", "worker-1", true}, "zone-b", true},
		{initRun{s.sts.Name + "-3", "worker-2", false}, "zone-c", false},
		{initRun{s.sts.Name + "-2", "worker-3", false}, "null", false},
		{initRun{s.sts.Name + "-1", "worker-4", false}, "1", false},
	} {
		t.Run(fmt.Sprintf("%s on %s state %v", tc.run.pod, tc.run.k8sNode, tc.run.hasState), func(t *testing.T) {
			out, err := runInit(t, s, init, t.TempDir(), tc.run, api)
			if err != nil {
				t.Fatalf("init container: %v\n%s", err, out)
			}
			var got struct {
				Node      struct{ Zone any }
				Bootstrap bool
			}
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("the config the init container wrote is no YAML: %v\n%s", err, out)
			}
			if got.Node.Zone != tc.zone {
				t.Errorf("node.zone %#v, want the string %q (label %s of %s)", got.Node.Zone, tc.zone, label, tc.run.k8sNode)
			}
			if got.Bootstrap != tc.bootstrap {
				t.Errorf("bootstrap %v, want %v: the first pod bootstraps on every start (the server waits for a seed once its plan names others), no other pod does", got.Bootstrap, tc.bootstrap)
			}
			env := podEnv(t, s.c, tc.run.pod, map[string]bool{})
			cfg, err := loadConfig(out, env)
			if err != nil {
				t.Fatalf("the server would refuse the config the init container wrote: %v\n%s", err, out)
			}
			if cfg.Node.Zone != tc.zone {
				t.Errorf("the server would run with node.zone %q, want %q", cfg.Node.Zone, tc.zone)
			}
		})
	}
	t.Run("unlabelled node", func(t *testing.T) {
		out, err := runInit(t, s, init, t.TempDir(), initRun{s.sts.Name + "-1", "worker-9", false}, api)
		if err == nil || !strings.Contains(out, label) {
			t.Errorf("a node without %s: want the init container to fail naming the label, got err %v:\n%s", label, err, out)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		bad := filepath.Join(dir, "bad-token")
		if err := os.WriteFile(bad, []byte("nope"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runInit(t, s, init, t.TempDir(), initRun{s.sts.Name + "-1", "worker-1", false}, []string{"--api-server", url, "--token-file", bad, "--ca-file", ca})
		if err == nil || !strings.Contains(out, "401") {
			t.Errorf("a token the API server refuses: want a failure naming the 401, got err %v:\n%s", err, out)
		}
	})
}
