package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// chainName is the filter-table chain that holds every cut. It is hooked
// from OUTPUT: traffic between loopback addresses passes OUTPUT once per
// packet, so one rule per direction cuts it.
const chainName = "RINGKV-CHAOS"

// iptablesLimit bounds one iptables run (-w waits for the xtables lock).
const iptablesLimit = 30 * time.Second

// errHostFirewall: iptables is run only inside NetNSCommand's namespace,
// so a chaos run can never change the host's firewall.
var errHostFirewall = errors.New("chaos: iptables refused outside the chaos network namespace (InNetNS is false)")

// iptables runs iptables with args inside the namespace.
func iptables(args ...string) error {
	if !InNetNS() {
		return errHostFirewall
	}
	ctx, cancel := context.WithTimeout(context.Background(), iptablesLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "10"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: iptables %s: %w: %s", strings.Join(args, " "), err, quote(out, 300))
	}
	return nil
}

// ensureChain creates the chain and its hook unless they exist.
func ensureChain() error {
	if iptables("-n", "-L", chainName) != nil {
		if err := iptables("-N", chainName); err != nil {
			return err
		}
	}
	if iptables("-C", "OUTPUT", "-j", chainName) != nil {
		return iptables("-I", "OUTPUT", "1", "-j", chainName)
	}
	return nil
}

// removeChain unhooks, flushes and deletes the chain.
func removeChain() error {
	return errors.Join(
		iptables("-D", "OUTPUT", "-j", chainName),
		iptables("-F", chainName),
		iptables("-X", chainName),
	)
}

// dropRule is the rule that drops packets from src to dst.
func dropRule(src, dst string) []string {
	return []string{"-A", chainName, "-s", src, "-d", dst, "-j", "DROP"}
}

// cutRules returns the rules of a cut: from each address of from to each
// of to, and back unless oneWay.
func cutRules(from, to []string, oneWay bool) [][]string {
	var rules [][]string
	for _, a := range from {
		for _, b := range to {
			rules = append(rules, dropRule(a, b))
			if !oneWay {
				rules = append(rules, dropRule(b, a))
			}
		}
	}
	return rules
}

// Cut drops every packet from the nodes of from to the nodes of to, and
// back unless oneWay, until Heal. It needs IPs and the network namespace.
// Nodes' traffic is told apart by source address, so a cut holds for
// connections a node makes from its own IP; the harness's requests (from
// 127.0.0.1) still reach every node.
func (c *Cluster) Cut(from, to []string, oneWay bool) error {
	if !c.cfg.IPs {
		return errors.New("chaos: Cut needs ClusterConfig.IPs: nodes on 127.0.0.1 cannot be told apart")
	}
	if len(from) == 0 || len(to) == 0 {
		return errors.New("chaos: Cut needs nodes on both sides")
	}
	ips := func(names []string) ([]string, error) {
		var out []string
		for _, name := range names {
			n := c.node(name)
			if n == nil {
				return nil, fmt.Errorf("chaos: cut: no node %q", name)
			}
			out = append(out, n.ip)
		}
		return out, nil
	}
	src, err := ips(from)
	if err != nil {
		return err
	}
	dst, err := ips(to)
	if err != nil {
		return err
	}
	for _, a := range from {
		for _, b := range to {
			if a == b {
				return fmt.Errorf("chaos: cut: %s is on both sides", a)
			}
		}
	}
	// stopped is read under fwMu: Stop sets it before it takes fwMu to
	// remove the chain, so a chain made here is always removed.
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	c.mu.Lock()
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return errStopped
	}
	if !c.chain {
		if err := ensureChain(); err != nil {
			return err
		}
		c.chain = true
	}
	for _, r := range cutRules(src, dst, oneWay) {
		if err := iptables(r...); err != nil {
			return err
		}
	}
	arrow := " <-/-> "
	if oneWay {
		arrow = " -/-> "
	}
	c.cuts = append(c.cuts, strings.Join(from, ",")+arrow+strings.Join(to, ","))
	return nil
}

// Cuts describes the cuts in place now ("n1,n2 <-/-> n3": both ways;
// "n1 -/-> n2": one way).
func (c *Cluster) Cuts() []string {
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	return slices.Clone(c.cuts)
}

// Heal removes every cut.
func (c *Cluster) Heal() error {
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	if !c.chain {
		return nil
	}
	if err := iptables("-F", chainName); err != nil {
		return err
	}
	c.cuts = nil
	return nil
}
