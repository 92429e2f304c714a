//go:build !unix

package node

// openFileLimit reports no limit where the process has no RLIMIT_NOFILE.
func openFileLimit() (uint64, bool) { return 0, false }
