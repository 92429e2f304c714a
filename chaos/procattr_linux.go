package chaos

import "syscall"

// childSysProcAttr puts a node in its own process group, so that the
// harness's signals reach it alone and a terminal's Ctrl-C does not, and
// has the kernel SIGKILL it if the harness dies, so that no node outlives
// a crashed run and keeps its ports. (Pdeathsig follows the thread that
// started the child; the Go runtime does not end threads it did not lock,
// and this package locks none.)
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
