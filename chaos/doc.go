// Package chaos runs a recorded workload against a cluster of real ringkv
// processes while it injects faults (SIGKILL and restart, SIGSTOP/SIGCONT,
// a wiped data directory, network cuts, a join and a leave), then checks
// the recorded history for lost, invented or resurrected values and stale
// reads. The ringkv chaos command and the e2e tests share it.
//
// The package drives nodes only over their HTTP API and as processes; it
// imports vclock alone, to read the causal contexts the API returns.
package chaos
