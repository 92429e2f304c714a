package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
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

// fakeKubectl writes a kubectl that answers "get node NAME -o jsonpath=..."
// with the value of label on that node, as the real one does, from a table
// of nodes and their labels; any other request fails.
func fakeKubectl(t *testing.T, dir, label string, nodeZones map[string]string) {
	t.Helper()
	path := "jsonpath={.metadata.labels." + strings.ReplaceAll(label, ".", `\.`) + "}"
	var cases strings.Builder
	for n, z := range nodeZones {
		cases.WriteString("  '" + n + "') printf %s '" + z + "' ;;\n")
	}
	script := "#!/bin/sh\n" +
		"[ \"$1 $2\" = 'get node' ] && [ \"$4\" = '-o' ] && [ \"$5\" = '" + path + "' ] || { echo \"fake kubectl: unexpected $*\" >&2; exit 2; }\n" +
		"case \"$3\" in\n" + cases.String() + "  *) echo \"fake kubectl: no node $3\" >&2; exit 1 ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runInit runs the init container's script for pod on a machine whose
// Kubernetes node is k8sNode, with every path under /etc/ringkv/ moved into
// root, and returns the config it wrote for the server (or its error).
func runInit(t *testing.T, s k8sSetup, init corev1.Container, root, bin, pod, k8sNode string) (string, error) {
	t.Helper()
	if len(init.Command) != 3 || init.Command[0] != "sh" || init.Command[1] != "-ec" {
		t.Fatalf("init container %s: want [sh -ec SCRIPT], got %v", init.Name, init.Command)
	}
	for _, d := range []string{"config", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "config", "ringkv.yaml"), []byte(s.cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(init.Command[2], "/etc/ringkv/", root+"/")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-ec", script)
	env := podEnv(t, init, pod, map[string]bool{})
	env["K8S_NODE"] = k8sNode // the node this pod landed on
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return string(out), err
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
	// The server reads the config the init container writes, from a
	// volume both mount at the same place.
	cfgPath, ok := flagValue(s.c.Args, "--config")
	if !ok || !mountedAt(s.c, cfgPath) || !mountedAt(init, cfgPath) {
		t.Fatalf("the server's --config %q must be on a volume the init container mounts too", cfgPath)
	}
	bin := t.TempDir()
	// worker-9 has no zone label: kubectl prints nothing for it.
	fakeKubectl(t, bin, label, map[string]string{"worker-1": "zone-b", "worker-2": "zone-c", "worker-9": ""})
	for _, tc := range []struct{ pod, k8sNode, zone string }{
		{s.sts.Name + "-0", "worker-1", "zone-b"},
		{s.sts.Name + "-3", "worker-2", "zone-c"},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			out, err := runInit(t, s, init, t.TempDir(), bin, tc.pod, tc.k8sNode)
			if err != nil {
				t.Fatalf("init script: %v\n%s", err, out)
			}
			var got struct {
				Node      struct{ Zone string }
				Bootstrap bool
			}
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("the config the init container wrote is no YAML: %v\n%s", err, out)
			}
			if got.Node.Zone != tc.zone {
				t.Errorf("node.zone %q, want %q (label %s of %s)", got.Node.Zone, tc.zone, label, tc.k8sNode)
			}
			if want := strings.HasSuffix(tc.pod, "-0"); got.Bootstrap != want {
				t.Errorf("bootstrap %v, want %v: only the first pod may start a cluster alone", got.Bootstrap, want)
			}
			env := podEnv(t, s.c, tc.pod, map[string]bool{})
			var pending []string
			if !hasZone() {
				t.Log("the server has no node.zone yet: checking the rest of the written config")
				pending = []string{"node.zone"}
			}
			if _, err := loadConfig(out, env, pending...); err != nil {
				t.Errorf("the server would refuse the config the init container wrote: %v\n%s", err, out)
			}
		})
	}
	t.Run("unlabelled node", func(t *testing.T) {
		out, err := runInit(t, s, init, t.TempDir(), bin, s.sts.Name+"-1", "worker-9")
		if err == nil || !strings.Contains(out, label) {
			t.Errorf("a node without %s: want the init container to fail naming the label, got err %v:\n%s", label, err, out)
		}
	})
}
