package deploy_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/ringkv/ringkv/node"
)

// k8s holds every object of deploy/kubernetes/, decoded strictly (a field
// the API types do not have is an error) into its API type.
type k8s struct {
	configMaps map[string]*corev1.ConfigMap
	services   map[string]*corev1.Service
	sets       []*appsv1.StatefulSet
	pdbs       []*policyv1.PodDisruptionBudget
	accounts   map[string]*corev1.ServiceAccount
	roles      map[string]*rbacv1.ClusterRole
	bindings   []*rbacv1.ClusterRoleBinding
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

func loadK8s(t *testing.T) k8s {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	m := k8s{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{},
		accounts: map[string]*corev1.ServiceAccount{}, roles: map[string]*rbacv1.ClusterRole{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := m.add([]byte(doc)); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
		}
	}
	if len(m.sets) != 1 {
		t.Fatalf("want one StatefulSet, got %d", len(m.sets))
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// add decodes one document by its apiVersion and kind.
func (m *k8s) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		return decodeInto(doc, func(o *corev1.ConfigMap) { m.configMaps[o.Name] = o })
	case "v1 Service":
		return decodeInto(doc, func(o *corev1.Service) { m.services[o.Name] = o })
	case "v1 ServiceAccount":
		return decodeInto(doc, func(o *corev1.ServiceAccount) { m.accounts[o.Name] = o })
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return decodeInto(doc, func(o *rbacv1.ClusterRole) { m.roles[o.Name] = o })
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return decodeInto(doc, func(o *rbacv1.ClusterRoleBinding) { m.bindings = append(m.bindings, o) })
	case "apps/v1 StatefulSet":
		return decodeInto(doc, func(o *appsv1.StatefulSet) { m.sets = append(m.sets, o) })
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, func(o *policyv1.PodDisruptionBudget) { m.pdbs = append(m.pdbs, o) })
	}
	return fmt.Errorf("kind %s of %s is not one these tests check: add it", tm.Kind, tm.APIVersion)
}

// decodeInto decodes doc strictly into a new T and hands it to keep.
func decodeInto[T any](doc []byte, keep func(*T)) error {
	o := new(T)
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return err
	}
	keep(o)
	return nil
}

// The values the tests give a pod's downward-API fields and secrets.
const (
	testPodIP   = "10.1.2.3"
	testK8sNode = "worker-1"
)

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// podEnv resolves a container's environment as the kubelet would for pod:
// $(VAR) references to earlier variables expanded, downward-API fields and
// secrets replaced by test values. secrets collects the secret names used.
func podEnv(t *testing.T, c corev1.Container, pod string, secrets map[string]bool) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = varRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				v, ok := env[name]
				if !ok {
					t.Errorf("container %s: %s refers to $(%s), which is not defined before it", c.Name, e.Name, name)
				}
				return v
			})
		case e.ValueFrom.FieldRef != nil:
			v, ok := map[string]string{"metadata.name": pod, "status.podIP": testPodIP, "spec.nodeName": testK8sNode}[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Errorf("container %s: %s reads field %s, which these tests do not know", c.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			secrets[ref.Name] = true
			env[e.Name] = "secret-" + ref.Key
			if ref.Key == "gossip-keys" {
				env[e.Name] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
			}
		default:
			t.Errorf("container %s: %s has a source these tests do not know", c.Name, e.Name)
		}
	}
	return env
}

func containerByName(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// flagValue is the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func port(t *testing.T, key, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("config %s: %q has no port", key, addr)
	}
	return int32(n)
}

// k8sSetup is what every Kubernetes check starts from: the objects, the
// StatefulSet's ringkv container and the configuration it runs with.
type k8sSetup struct {
	m       k8s
	sts     *appsv1.StatefulSet
	c       corev1.Container
	cfgYAML string
	cfg     node.Config
	env     map[string]string
	secrets map[string]bool
}

func newK8sSetup(t *testing.T) k8sSetup {
	t.Helper()
	s := k8sSetup{m: loadK8s(t), secrets: map[string]bool{}}
	s.sts = s.m.sets[0]
	s.c = containerByName(t, s.sts.Spec.Template.Spec.Containers, "ringkv")
	s.env = podEnv(t, s.c, s.sts.Name+"-1", s.secrets)
	var cmName string
	for _, v := range s.sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm, ok := s.m.configMaps[cmName]
	if !ok {
		t.Fatalf("the StatefulSet mounts ConfigMap %q, which is not in the manifests", cmName)
	}
	s.cfgYAML, ok = cm.Data["ringkv.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no ringkv.yaml", cm.Name)
	}
	cfg, err := loadConfig(s.cfgYAML, s.env)
	if err != nil {
		t.Fatalf("the ConfigMap's config with the pod's environment is not one the server accepts: %v", err)
	}
	s.cfg = cfg
	return s
}

func TestKubernetesPorts(t *testing.T) {
	s := newK8sSetup(t)
	want := map[string]struct {
		port  int32
		proto corev1.Protocol
	}{
		"http":       {port(t, "listen.http", s.cfg.Listen.HTTP), corev1.ProtocolTCP},
		"resp":       {port(t, "listen.resp", s.cfg.Listen.RESP), corev1.ProtocolTCP},
		"rpc":        {port(t, "listen.rpc", s.cfg.Listen.RPC), corev1.ProtocolTCP},
		"gossip":     {port(t, "listen.gossip", s.cfg.Listen.Gossip), corev1.ProtocolTCP},
		"gossip-udp": {port(t, "listen.gossip", s.cfg.Listen.Gossip), corev1.ProtocolUDP},
	}
	got := map[string]corev1.ContainerPort{}
	for _, p := range s.c.Ports {
		got[p.Name] = p
	}
	for name, w := range want {
		p, ok := got[name]
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if !ok || p.ContainerPort != w.port || proto != w.proto {
			t.Errorf("container port %s: got %+v, want %d/%s as the config says", name, p, w.port, w.proto)
		}
	}
	for _, svc := range s.m.services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.sts.Spec.Template.Labels)) {
			t.Errorf("Service %s selects %v, not the pods (%v)", svc.Name, svc.Spec.Selector, s.sts.Spec.Template.Labels)
		}
		for _, sp := range svc.Spec.Ports {
			cp, ok := got[sp.TargetPort.String()]
			if !ok || cp.ContainerPort != sp.Port || (cp.Protocol != sp.Protocol && sp.Protocol != "" && cp.Protocol != "") {
				t.Errorf("Service %s port %s: targets %q, which is not a container port of %d/%s", svc.Name, sp.Name, sp.TargetPort.String(), sp.Port, sp.Protocol)
			}
		}
	}
}

func TestKubernetesSeeds(t *testing.T) {
	s := newK8sSetup(t)
	headless, ok := s.m.services[s.sts.Spec.ServiceName]
	if !ok || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("the StatefulSet's serviceName %q must be a headless Service in the manifests", s.sts.Spec.ServiceName)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Error("the headless Service must publish not-ready pods: a node is ready only after it joined through the seeds' names")
	}
	if len(s.cfg.Seeds) == 0 {
		t.Fatal("the config names no seeds")
	}
	gport := strconv.Itoa(int(port(t, "listen.gossip", s.cfg.Listen.Gossip)))
	replicas := int(*s.sts.Spec.Replicas)
	for _, seed := range s.cfg.Seeds {
		host, p, err := net.SplitHostPort(seed)
		if err != nil || p != gport {
			t.Errorf("seed %q: want host:%s (listen.gossip's port)", seed, gport)
			continue
		}
		pod, svc, _ := strings.Cut(host, ".")
		ord, err := strconv.Atoi(strings.TrimPrefix(pod, s.sts.Name+"-"))
		if svc != headless.Name || !strings.HasPrefix(pod, s.sts.Name+"-") || err != nil || ord < 0 || ord >= replicas {
			t.Errorf("seed %q is not the DNS name of a pod of the StatefulSet (%s-0..%d.%s)", seed, s.sts.Name, replicas-1, headless.Name)
		}
	}
	if s.cfg.Listen.Advertise != testPodIP {
		t.Errorf("listen.advertise is %q, want the pod IP (status.podIP)", s.cfg.Listen.Advertise)
	}
	if s.cfg.Node.Name != s.sts.Name+"-1" {
		t.Errorf("node.name is %q, want the pod name", s.cfg.Node.Name)
	}
}

func TestKubernetesProbes(t *testing.T) {
	s := newK8sSetup(t)
	probes := map[string]*corev1.Probe{"readiness": s.c.ReadinessProbe, "liveness": s.c.LivenessProbe, "startup": s.c.StartupProbe}
	wantPath := map[string]string{"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"}
	// A node loading a large WAL must not be killed by liveness (which
	// also runs the preStop leave) before it answers: minutes of grace.
	if p := s.c.StartupProbe; p != nil && p.PeriodSeconds*p.FailureThreshold < 120 {
		t.Errorf("startup probe allows %ds, want at least 120", p.PeriodSeconds*p.FailureThreshold)
	}
	wantScheme := corev1.URISchemeHTTP
	if s.cfg.TLS.Enabled() {
		wantScheme = corev1.URISchemeHTTPS
	}
	var paths []string
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet probe", kind)
			continue
		}
		g := p.HTTPGet
		if g.Path != wantPath[kind] {
			t.Errorf("%s probe: path %q, want %q", kind, g.Path, wantPath[kind])
		}
		if g.Port.String() != "http" {
			t.Errorf("%s probe: port %q, want the http port (listen.http)", kind, g.Port.String())
		}
		if g.Scheme != wantScheme {
			t.Errorf("%s probe: scheme %q, want %q (TLS on: %v)", kind, g.Scheme, wantScheme, s.cfg.TLS.Enabled())
		}
		paths = append(paths, g.Path)
	}
	for path, code := range probeStatus(t, paths) {
		if code != 200 {
			t.Errorf("a running node answers %s with %d: the probe points at a route it does not serve", path, code)
		}
	}
}

func TestKubernetesPreStop(t *testing.T) {
	s := newK8sSetup(t)
	if s.c.Lifecycle == nil || s.c.Lifecycle.PreStop == nil || s.c.Lifecycle.PreStop.Exec == nil {
		t.Fatal("want a preStop exec hook")
	}
	cmd := s.c.Lifecycle.PreStop.Exec.Command
	if len(cmd) < 2 || cmd[0] != imageBinary(t) || cmd[1] != "leave" {
		t.Fatalf("preStop %v: want %s leave ...", cmd, imageBinary(t))
	}
	checkCommand(t, "preStop", cmd[1:])
	u, ok := flagValue(cmd, "--node")
	if !ok {
		t.Fatal("preStop: leave without --node")
	}
	scheme, hostport, _ := strings.Cut(u, "://")
	host, p, err := net.SplitHostPort(hostport)
	if err != nil || !net.ParseIP(host).IsLoopback() || p != strconv.Itoa(int(port(t, "listen.http", s.cfg.Listen.HTTP))) {
		t.Errorf("preStop --node %q: want this pod's own listen.http on loopback", u)
	}
	if s.cfg.TLS.Enabled() {
		if ca, _ := flagValue(cmd, "--tls-ca"); scheme != "https" || ca != s.cfg.TLS.CAFile {
			t.Errorf("preStop: with TLS on, want https and --tls-ca %s, got %v", s.cfg.TLS.CAFile, cmd)
		}
	}
	if len(s.cfg.Auth.Tokens) > 0 || s.cfg.Auth.TokensFile != "" {
		if _, ok := s.env["RINGKV_TOKEN"]; !ok {
			t.Error("preStop: with auth tokens on, leave needs an admin token: set RINGKV_TOKEN in the container")
		}
	}
	if g := s.sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 60 {
		t.Errorf("terminationGracePeriodSeconds %v: leave hands every partition off first; give it minutes", g)
	}
}

// imageBinary is where deploy/Dockerfile puts the binary: its ENTRYPOINT.
func imageBinary(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no ENTRYPOINT [\"...\"]")
	}
	return string(m[1])
}

func TestKubernetesObjects(t *testing.T) {
	s := newK8sSetup(t)
	podLabels := labels.Set(s.sts.Spec.Template.Labels)
	if len(s.m.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(s.m.pdbs))
	}
	pdb := s.m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selects %v, not the pods: %v", pdb.Spec.Selector, err)
	}
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1: quorum writes need two of three replicas", mu)
	}
	// Every mount names a volume; the data directory is the claim.
	vols := map[string]bool{}
	for _, v := range s.sts.Spec.Template.Spec.Volumes {
		vols[v.Name] = true
		if v.ConfigMap != nil && s.m.configMaps[v.ConfigMap.Name] == nil {
			t.Errorf("volume %s: ConfigMap %s is not in the manifests", v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil {
			s.secrets[v.Secret.SecretName] = true
		}
	}
	for _, c := range s.sts.Spec.VolumeClaimTemplates {
		vols[c.Name] = true
	}
	dataMounted := false
	for _, c := range append(s.sts.Spec.Template.Spec.InitContainers, s.sts.Spec.Template.Spec.Containers...) {
		for _, vm := range c.VolumeMounts {
			if !vols[vm.Name] {
				t.Errorf("container %s mounts %s, which is no volume", c.Name, vm.Name)
			}
			if c.Name == s.c.Name && vm.MountPath == s.cfg.Node.DataDir && slices.ContainsFunc(s.sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name }) {
				dataMounted = true
			}
		}
	}
	if !dataMounted {
		t.Errorf("node.data_dir %q is not a volume claim template's mount", s.cfg.Node.DataDir)
	}
	for _, f := range []string{s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.cfg.TLS.CAFile, s.cfg.Auth.TokensFile} {
		if f != "" && !mountedAt(s.c, f) {
			t.Errorf("%s is in no volume the container mounts", f)
		}
	}
	for _, want := range []string{"ringkv-tls", "ringkv-secrets"} {
		if !s.secrets[want] {
			t.Errorf("secret %s (docs/deploy.md creates it) is not used", want)
		}
	}
	// The init container may read nodes: its service account is bound to
	// a role that allows it.
	sa := s.sts.Spec.Template.Spec.ServiceAccountName
	if s.m.accounts[sa] == nil {
		t.Fatalf("service account %q is not in the manifests", sa)
	}
	if !canGetNodes(s.m, sa) {
		t.Errorf("service account %s is bound to no ClusterRole that may get nodes", sa)
	}
}

func mountedAt(c corev1.Container, file string) bool {
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

func canGetNodes(m k8s, sa string) bool {
	for _, b := range m.bindings {
		bound := slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa })
		role := m.roles[b.RoleRef.Name]
		if !bound || b.RoleRef.Kind != "ClusterRole" || role == nil {
			continue
		}
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "nodes") && slices.Contains(r.Verbs, "get") {
				return true
			}
		}
	}
	return false
}
