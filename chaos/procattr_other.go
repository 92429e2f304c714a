//go:build unix && !linux

package chaos

import "syscall"

// childSysProcAttr puts a node in its own process group, so that the
// harness's signals reach it alone. Without Pdeathsig a node outlives a
// harness killed with SIGKILL; Stop ends every node otherwise.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
