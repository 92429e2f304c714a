package deploy_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ringkv/ringkv/node"
)

// composeFile is the part of a Compose file these tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]any            `yaml:"networks"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Hostname    string            `yaml:"hostname"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Networks    []string          `yaml:"networks"`
	NetworkMode string            `yaml:"network_mode"`
	Restart     string            `yaml:"restart"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

func loadCompose(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// imageEnv is the environment deploy/Dockerfile sets (ENV K=V lines).
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV ([A-Z_]+)=(\S+)$`).FindAllStringSubmatch(string(b), -1) {
		env[m[1]] = m[2]
	}
	return env
}

// serviceConfig is the configuration a Compose service's node runs with:
// the image's environment under the service's.
func serviceConfig(t *testing.T, name string, svc composeService) node.Config {
	t.Helper()
	env := imageEnv(t)
	for k, v := range svc.Environment {
		env[k] = v
	}
	cfg, err := loadConfig("", env)
	if err != nil {
		t.Fatalf("service %s: the server would refuse its configuration: %v", name, err)
	}
	return cfg
}

func TestComposeFile(t *testing.T) {
	f := loadCompose(t, "compose.yaml")
	if len(f.Services) != 5 {
		t.Fatalf("want 5 nodes, got %d services", len(f.Services))
	}
	cfgs := map[string]node.Config{}
	for name, svc := range f.Services {
		cfgs[name] = serviceConfig(t, name, svc)
	}
	zones := map[string][]string{}
	bootstraps := 0
	for name, svc := range f.Services {
		cfg := cfgs[name]
		zone := svc.Environment["RINGKV_NODE_ZONE"]
		if zone == "" {
			t.Errorf("service %s has no zone (RINGKV_NODE_ZONE)", name)
		}
		zones[zone] = append(zones[zone], name)
		if cfg.Bootstrap {
			bootstraps++
		}
		checkComposeNode(t, f, name, svc, cfg, cfgs)
	}
	if len(zones) != 3 {
		t.Errorf("want 3 zones, got %v", zones)
	}
	for z, nodes := range zones {
		if len(nodes) > 2 {
			t.Errorf("zone %s holds %v: more than ceil(5/3) nodes", z, nodes)
		}
	}
	if bootstraps != 1 {
		t.Errorf("%d nodes may start a cluster alone (bootstrap), want exactly 1", bootstraps)
	}
}

// checkComposeNode holds one service to the rules of docs/deploy.md.
func checkComposeNode(t *testing.T, f composeFile, name string, svc composeService, cfg node.Config, cfgs map[string]node.Config) {
	t.Helper()
	if cfg.Node.Name != name || svc.Hostname != name {
		t.Errorf("service %s: node.name %q, hostname %q; want both the service name", name, cfg.Node.Name, svc.Hostname)
	}
	// RPC is advertised as the address it binds: the service name, which
	// resolves to the container's address on the network.
	if h, _, _ := net.SplitHostPort(cfg.Listen.RPC); h != name {
		t.Errorf("service %s: listen.rpc %q, want %s:PORT", name, cfg.Listen.RPC, name)
	}
	for _, seed := range cfg.Seeds {
		h, p, err := net.SplitHostPort(seed)
		other, ok := cfgs[h]
		if err != nil || !ok || h == name || p != strconv.Itoa(int(port(t, "listen.gossip", other.Listen.Gossip))) {
			t.Errorf("service %s: seed %q is not another service's name and gossip port", name, seed)
		}
	}
	if len(cfg.Seeds) != len(f.Services)-1 {
		t.Errorf("service %s: %d seeds; list the %d others so that start order does not matter", name, len(cfg.Seeds), len(f.Services)-1)
	}
	if len(svc.Networks) != 1 || f.Networks[svc.Networks[0]] == nil || svc.NetworkMode != "" {
		t.Errorf("service %s: want it on the file's one private network, got %v %q", name, svc.Networks, svc.NetworkMode)
	}
	want := fmt.Sprintf("%s-data:%s", name, cfg.Node.DataDir)
	if !slices.Contains(svc.Volumes, want) {
		t.Errorf("service %s: volumes %v, want %s (its own volume on node.data_dir)", name, svc.Volumes, want)
	} else if _, ok := f.Volumes[name+"-data"]; !ok {
		t.Errorf("volume %s-data is not declared", name)
	}
	published := map[string]bool{
		strconv.Itoa(int(port(t, "listen.http", cfg.Listen.HTTP))): true,
		strconv.Itoa(int(port(t, "listen.resp", cfg.Listen.RESP))): true,
	}
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		if name != "n1" || len(parts) != 3 || parts[0] != "127.0.0.1" || !published[parts[2]] {
			t.Errorf("service %s publishes %q: only n1 publishes, its HTTP and RESP ports, on 127.0.0.1", name, p)
		}
	}
	if name == "n1" && len(svc.Ports) != 2 {
		t.Errorf("n1 publishes %v, want its HTTP and RESP ports", svc.Ports)
	}
	checkHealthcheck(t, "service "+name, svc.Healthcheck.Test, cfg)
}

// checkHealthcheck holds a health check to "ringkv health" on the node's
// own /readyz.
func checkHealthcheck(t *testing.T, what string, test []string, cfg node.Config) {
	t.Helper()
	if len(test) < 3 || test[0] != "CMD" || test[1] != imageBinary(t) || test[2] != "health" {
		t.Errorf("%s: health check %v, want [CMD %s health ...] (the image has no shell)", what, test, imageBinary(t))
		return
	}
	checkCommand(t, what+" health check", test[2:])
	raw, _ := flagValue(test, "--url")
	u, err := url.Parse(raw)
	if err != nil || u.Path != "/readyz" || u.Port() != strconv.Itoa(int(port(t, "listen.http", cfg.Listen.HTTP))) {
		t.Errorf("%s: health check --url %q, want the node's own listen.http /readyz", what, raw)
		return
	}
	host, _, _ := net.SplitHostPort(cfg.Listen.HTTP)
	if ip := net.ParseIP(u.Hostname()); ip == nil || (!ip.IsLoopback() && u.Hostname() != host) {
		t.Errorf("%s: health check --url %q, want an address the node listens on (%s)", what, raw, cfg.Listen.HTTP)
	}
}

// The image's own health check probes the default HTTP port, which the
// image's environment leaves alone.
func TestDockerfileHealthcheck(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)CMD \[("/ringkv", "health"[^\]]*)\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no HEALTHCHECK running ringkv health")
	}
	var args []string
	if err := yaml.Unmarshal([]byte("["+string(m[1])+"]"), &args); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("", imageEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	checkHealthcheck(t, "Dockerfile", append([]string{"CMD"}, args...), cfg)
}
