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
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

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
--bootstrap-pod, the pod named so (--pod) also gets bootstrap: true, but only
when its data directory (--data-dir) holds no cluster state yet: a node that
has run before restarts into its cluster instead of starting a new one.

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
			if o.bootstrapPod != "" && (o.pod == "" || o.data == "") {
				return usageError("--bootstrap-pod needs --pod and --data-dir")
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
	f.StringVar(&o.bootstrapPod, "bootstrap-pod", "", "the pod that may start a new cluster (bootstrap: true) when its data directory is empty")
	f.StringVar(&o.data, "data-dir", "", "the node's data directory, to tell a first start from a restart")
	f.StringVar(&o.api, "api-server", "", "the API server's URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
	f.StringVar(&o.tokenFile, "token-file", k8sTokenFile, "the service-account token")
	f.StringVar(&o.caFile, "ca-file", k8sCAFile, "the CA that signed the API server's certificate")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// writeK8sConfig does the work of k8s-zone.
func writeK8sConfig(ctx context.Context, stderr io.Writer, o *k8sZoneOpts) error {
	cfg := map[string]any{}
	b, err := readBounded(o.base, k8sConfigBytes)
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
	nodeSec, _ := cfg["node"].(map[string]any)
	if nodeSec == nil {
		nodeSec = map[string]any{}
	}
	nodeSec["zone"] = zone
	cfg["node"] = nodeSec
	if o.bootstrapPod != "" && o.pod == o.bootstrapPod {
		seen, err := node.HasClusterState(o.data)
		if err != nil {
			return err
		}
		cfg["bootstrap"] = !seen
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	tmp := o.out + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: node.zone %q (label %s of node %s), bootstrap %v\n", o.out, zone, o.label, o.node, cfg["bootstrap"] == true)
	return nil
}

// k8sNodeLabels GETs the node from the API server and returns its labels.
func k8sNodeLabels(ctx context.Context, o *k8sZoneOpts) (map[string]string, error) {
	base, err := k8sAPIServer(o.api)
	if err != nil {
		return nil, err
	}
	token, err := readBounded(o.tokenFile, k8sSecretBytes)
	if err != nil {
		return nil, err
	}
	caPEM, err := readBounded(o.caFile, k8sSecretBytes)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate", o.caFile)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/nodes/"+url.PathEscape(o.node), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
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
		return nil, fmt.Errorf("kubernetes API: GET node %s: %s: %.300s", o.node, resp.Status, body)
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

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
