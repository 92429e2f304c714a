package chaos

import (
	"os"
	"strings"
)

// Cuts between nodes are iptables rules, which must never touch the
// host's firewall. So a run that cuts re-executes itself (NetNSCommand)
// into a private network namespace, where the child brings up its own
// loopback (SetupNetNS), every node gets its own 127.0.0.x address, and
// the rules live and die with the namespace.

// netnsEnv carries, to a process started by NetNSCommand, the network
// namespace of its parent ("net:[4026531840]"). It is not a ringkv config
// key (the nodes never see RINGKV_ variables of the harness).
const netnsEnv = "RINGKV_CHAOS_NETNS"

// netnsSelf names the network namespace of this process.
const netnsSelf = "/proc/self/ns/net"

// InNetNS reports whether this process was started by NetNSCommand and
// runs in a network namespace other than its parent's. A copied or
// inherited variable alone is not enough: the namespace itself must
// differ, so iptables can never be run on the host's firewall.
func InNetNS() bool {
	parent := os.Getenv(netnsEnv)
	if !strings.HasPrefix(parent, "net:[") || !strings.HasSuffix(parent, "]") {
		return false
	}
	self, err := os.Readlink(netnsSelf)
	return err == nil && self != parent
}
