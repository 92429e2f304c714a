package node

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
)

// ErrCertNameClash is a node name or host that WriteCerts refuses
// because a certificate would name a node it does not belong to: peers
// accept any certificate of the CA whose DNS names include the node name
// claimed, so such a name lets one node act as another.
var ErrCertNameClash = errors.New("node: certs: a certificate would name another node")

// maxScannedCerts and maxCertFileBytes bound what existingNodeNames reads
// from the directory.
const (
	maxScannedCerts  = 10_000
	maxCertFileBytes = 64 << 10
)

// existingNodeNames maps each node certificate already in dir (every
// *.crt but the CA's and the client's) by node name to the DNS names and
// IP addresses it carries. A missing dir has none.
func existingNodeNames(dir string) (map[string][]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, fmt.Errorf("node: certs: %w", err)
	}
	if len(paths) > maxScannedCerts {
		return nil, fmt.Errorf("node: certs: %s holds %d certificates, at most %d are checked", dir, len(paths), maxScannedCerts)
	}
	out := map[string][]string{}
	for _, p := range paths {
		base := filepath.Base(p)
		if base == CACertFile || base == ClientCertFile {
			continue
		}
		cert, err := ReadCertFile(p)
		if err != nil {
			return nil, err
		}
		names := append([]string(nil), cert.DNSNames...)
		for _, ip := range cert.IPAddresses {
			names = append(names, ip.String())
		}
		out[strings.TrimSuffix(base, ".crt")] = names
	}
	return out, nil
}

// ReadCertFile parses the first certificate of a PEM file; a file over
// 64 KiB is refused unread.
func ReadCertFile(path string) (*x509.Certificate, error) {
	b, err := atomicfile.ReadBounded(vfs.OSFS{}, path, maxCertFileBytes)
	if err != nil {
		return nil, fmt.Errorf("node: certs: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("node: certs: %s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("node: certs: %s: %w", path, err)
	}
	return cert, nil
}

// checkNodeNames refuses node names and hosts that would let one node's
// certificate name another node; existing maps the node certificates
// already issued (existingNodeNames). Re-issuing a node replaces its own
// existing certificate, which therefore does not count against it.
// DNS names are compared case-insensitively, as clients do.
func checkNodeNames(nodes []string, hosts map[string][]string, existing map[string][]string) error {
	issuing := map[string]bool{}
	for _, n := range nodes {
		if n == "" || strings.ContainsAny(n, " \t\n/\\*=") || n == ClientCertName || n == "ca" || n == "client" {
			return fmt.Errorf("node: certs: bad node name %q", n)
		}
		if net.ParseIP(n) != nil {
			return fmt.Errorf("%w: node name %q is an IP address, which peers cannot check as a node name; name the node and add the address as its host", ErrCertNameClash, n)
		}
		for _, l := range loopbackNames {
			if strings.EqualFold(n, l) {
				return fmt.Errorf("%w: node name %q is in every node's certificate", ErrCertNameClash, n)
			}
		}
		if issuing[n] {
			return fmt.Errorf("node: certs: node %q named twice", n)
		}
		issuing[n] = true
	}
	for n := range hosts {
		if !issuing[n] {
			return fmt.Errorf("node: certs: hosts given for %q, which is not among the nodes issued", n)
		}
	}
	// Every other node (issued now or before) must not be named by n's
	// certificate, nor name n in its own.
	others := map[string][]string{}
	for n, names := range existing {
		if !issuing[n] {
			others[n] = names
		}
	}
	for _, n := range nodes {
		others[n] = hosts[n]
	}
	for _, n := range nodes {
		for _, h := range hosts[n] {
			if h == "" {
				return fmt.Errorf("node: certs: empty host for node %q", n)
			}
		}
		for o, names := range others {
			if o == n {
				continue
			}
			for _, h := range hosts[n] {
				if strings.EqualFold(h, o) {
					return fmt.Errorf("%w: host %q of node %q is the name of node %q", ErrCertNameClash, h, n, o)
				}
			}
			for _, h := range names {
				if strings.EqualFold(h, n) {
					return fmt.Errorf("%w: node %q is named in node %q's certificate (or hosts); pick another node name", ErrCertNameClash, n, o)
				}
			}
		}
	}
	return nil
}
