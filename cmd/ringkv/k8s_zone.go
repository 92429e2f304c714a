package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/httpclient"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/node"
)

// The service account's credentials, where Kubernetes mounts them in
// every pod that has one.
const (
	k8sTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	k8sCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// Bounds on what k8s-zone reads: a token or CA bundle is a few KiB, a
// Node object (with its image list) rarely above a few hundred KiB.
const (
	k8sSecretBytes = 64 << 10
	k8sNodeBytes   = 4 << 20
	k8sConfigBytes = 1 << 20
)

// k8sZoneOpts are the flags of "ringkv k8s-zone".
type k8sZoneOpts struct {
	node, label, base, out  string
	pod, bootstrapPod, data string
	api, tokenFile, caFile  string
	timeout                 time.Duration
}

// k8sZoneCmd writes a pod's server config with node.zone taken from its
// Kubernetes node's zone label: the downward API shows a pod its own
// labels, not its node's, so an init container running the ringkv image
// (no shell, no kubectl) asks the API server itself.
func (a *app) k8sZoneCmd() *cobra.Command {
	var o k8sZoneOpts
	cmd := &cobra.Command{
		Use:   "k8s-zone",
		Short: "Write a config with node.zone from the Kubernetes node's zone label (for an init container)",
		Long: `Read the label --label of Kubernetes node --node with one GET to the API
server (/api/v1/nodes/NAME, with the pod's service-account token and CA),
then write --base with node.zone set to its value to --out. With
--bootstrap-pod, the pod named so (--pod) gets bootstrap: true and every
other pod bootstrap: false, whatever --base says. The server decides what
bootstrap does from its data directory: on a first start it starts a new
cluster if no seed answers; restarted, it serves at once only while its
persisted plan is itself alone, and otherwise waits for a seed. --data-dir
(default: RINGKV_NODE_DATA_DIR, else node.data_dir of --base) only adds to
the message whether the bootstrap pod is on a first start.

  ringkv k8s-zone --node "$K8S_NODE" --label topology.kubernetes.io/zone \
    --base /etc/ringkv/config/ringkv.yaml --out /etc/ringkv/run/ringkv.yaml \
    --pod "$POD_NAME" --bootstrap-pod ringkv-0 --data-dir /data

The service account needs "get" on nodes. A node without the label is an
error naming it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.node == "" || o.label == "" || o.base == "" || o.out == "" {
				return usageError("--node, --label, --base and --out are required")
			}
			if o.bootstrapPod != "" && o.pod == "" {
				return usageError("--bootstrap-pod needs --pod")
			}
			if o.timeout <= 0 {
				return usageError("--timeout must be positive, got %s", o.timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return writeK8sConfig(ctx, cmd.ErrOrStderr(), &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.node, "node", "", "the Kubernetes node the pod runs on (downward API spec.nodeName)")
	f.StringVar(&o.label, "label", "topology.kubernetes.io/zone", "the node label that names its zone")
	f.StringVar(&o.base, "base", "", "the config file to start from")
	f.StringVar(&o.out, "out", "", "where to write the config the server loads")
	f.StringVar(&o.pod, "pod", "", "this pod's name (downward API metadata.name)")
	f.StringVar(&o.bootstrapPod, "bootstrap-pod", "", "the pod that gets bootstrap: true (every other pod gets false)")
	f.StringVar(&o.data, "data-dir", "", "the node's data directory, to say whether the bootstrap pod is on a first start (default RINGKV_NODE_DATA_DIR, else node.data_dir of --base)")
	f.StringVar(&o.api, "api-server", "", "the API server's URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
	f.StringVar(&o.tokenFile, "token-file", k8sTokenFile, "the service-account token")
	f.StringVar(&o.caFile, "ca-file", k8sCAFile, "the CA that signed the API server's certificate")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// writeK8sConfig does the work of k8s-zone.
func writeK8sConfig(ctx context.Context, stderr io.Writer, o *k8sZoneOpts) error {
	cfg := map[string]any{}
	b, err := atomicfile.ReadBounded(vfs.OSFS{}, o.base, k8sConfigBytes)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("--base %s: %w", o.base, err)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	labels, err := k8sNodeLabels(ctx, o)
	if err != nil {
		return err
	}
	zone := labels[o.label]
	if zone == "" {
		return fmt.Errorf("kubernetes node %s has no %s label: label it (kubectl label node %s %s=NAME)", o.node, o.label, o.node, o.label)
	}
	nodeSec, _ := takeKey(cfg, "node").(map[string]any)
	if nodeSec == nil {
		nodeSec = map[string]any{}
	}
	takeKey(nodeSec, "zone")
	nodeSec["zone"] = zone
	cfg["node"] = nodeSec
	note := ""
	if o.bootstrapPod != "" {
		// Every restart of the bootstrap pod keeps bootstrap: true: the
		// server itself waits for a seed once its plan names other nodes,
		// and a pod whose cluster shrank to itself must not wait forever.
		takeKey(cfg, "bootstrap")
		cfg["bootstrap"] = o.pod == o.bootstrapPod
		if o.pod == o.bootstrapPod {
			if note, err = bootstrapNote(o.data, nodeSec); err != nil {
				return err
			}
		}
	}
	if err := writeFileAtomic(o.out, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: node.zone %q (label %s of node %s), bootstrap %v%s\n", o.out, zone, o.label, o.node, cfg["bootstrap"] == true, note)
	return nil
}

// takeKey removes every key of m equal to key under Unicode case folding
// and returns the value of one: the server's config loader (viper) reads
// keys case-insensitively, so "Node:" in --base is node's section and a
// second spelling beside the one written would make the result ambiguous.
func takeKey(m map[string]any, key string) any {
	var v any
	for k, val := range m {
		if strings.EqualFold(k, key) {
			if v == nil || k == key {
				v = val
			}
			delete(m, k)
		}
	}
	return v
}

// bootstrapNote says whether the bootstrap pod's data directory (dataDir,
// else RINGKV_NODE_DATA_DIR, else node.data_dir of the base config) holds
// cluster state; empty when no directory is known.
func bootstrapNote(dataDir string, nodeSec map[string]any) (string, error) {
	if dataDir == "" {
		dataDir = os.Getenv(envPrefix + "_NODE_DATA_DIR")
	}
	if dataDir == "" {
		dataDir, _ = lookupFold(nodeSec, "data_dir").(string)
	}
	if dataDir == "" {
		return "", nil
	}
	seen, err := node.HasClusterState(dataDir)
	switch {
	case err != nil:
		return "", err
	case seen:
		return fmt.Sprintf(" (%s holds cluster state: the node serves at once only if its plan is itself alone, else it waits for a seed)", dataDir), nil
	}
	return fmt.Sprintf(" (%s holds no cluster state: a first start, which starts a new cluster if no seed answers)", dataDir), nil
}

// lookupFold returns the value of a key of m equal to key under case
// folding, leaving m as it is.
func lookupFold(m map[string]any, key string) any {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// writeFileAtomic writes cfg as YAML to path (mode 0644 less the umask)
// with fsyncs and a rename, so that the server never reads half a config
// and a machine crash after this step leaves the old file or the new one.
func writeFileAtomic(path string, cfg map[string]any) error {
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return atomicfile.Replace(vfs.OSFS{FileMode: 0o644}, path, out)
}

// k8sNodeLabels GETs the node from the API server and returns its labels.
func k8sNodeLabels(ctx context.Context, o *k8sZoneOpts) (map[string]string, error) {
	base, err := k8sAPIServer(o.api)
	if err != nil {
		return nil, err
	}
	token, err := atomicfile.ReadBounded(vfs.OSFS{}, o.tokenFile, k8sSecretBytes)
	if err != nil {
		return nil, err
	}
	caPEM, err := atomicfile.ReadBounded(vfs.OSFS{}, o.caFile, k8sSecretBytes)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate", o.caFile)
	}
	hc := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		// One call to the API server, never forwarded elsewhere.
		CheckRedirect: httpclient.NoRedirect,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/nodes/"+url.PathEscape(o.node), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	// Only the metadata, not the whole Node (its image list can be large);
	// a server that cannot send that sends the Node.
	req.Header.Set("Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, k8sNodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("kubernetes API: reading node %s: %w", o.node, err)
	}
	if len(body) > k8sNodeBytes {
		return nil, fmt.Errorf("kubernetes API: node %s: answer larger than %d bytes", o.node, k8sNodeBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubernetes API: GET node %s: %s: %.300s%s", o.node, resp.Status, body, k8sStatusHint(resp.StatusCode))
	}
	var n struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("kubernetes API: node %s: %w", o.node, err)
	}
	return n.Metadata.Labels, nil
}

// k8sStatusHint says what to check for the refusals an operator can fix.
func k8sStatusHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return " (the API server refused the token: check --token-file and that the pod's service account token is mounted)"
	case http.StatusForbidden:
		return " (the service account needs \"get\" on nodes: apply deploy/kubernetes/rbac.yaml and check that its ClusterRoleBinding names the service account in the pod's namespace)"
	}
	return ""
}

// k8sAPIServer is --api-server, or the in-cluster address Kubernetes puts
// in every pod's environment.
func k8sAPIServer(flag string) (string, error) {
	if flag != "" {
		u, err := url.Parse(flag)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return "", usageError("--api-server must be an https:// URL, got %q", flag)
		}
		return strings.TrimSuffix(flag, "/"), nil
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return "", errors.New("not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST/PORT): pass --api-server")
	}
	return "https://" + net.JoinHostPort(host, port), nil
}
