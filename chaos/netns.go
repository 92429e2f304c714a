package chaos

import "os"

// Cuts between nodes are iptables rules, which must never touch the
// host's firewall. So a run that cuts re-executes itself (NetNSCommand)
// into a private network namespace, where the child brings up its own
// loopback (SetupNetNS), every node gets its own 127.0.0.x address, and
// the rules live and die with the namespace.

// netnsEnv marks a process started by NetNSCommand. It is not a ringkv
// config key (the nodes never see RINGKV_ variables of the harness).
const netnsEnv = "RINGKV_CHAOS_NETNS"

// InNetNS reports whether this process was started by NetNSCommand, in a
// network namespace of its own.
func InNetNS() bool { return os.Getenv(netnsEnv) == "1" }
