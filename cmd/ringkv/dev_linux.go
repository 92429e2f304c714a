package main

import "syscall"

// devSysProcAttr puts each dev child in its own process group, so that a
// terminal's Ctrl-C reaches only "ringkv dev", which then stops the children
// in order; and asks the kernel to SIGTERM the child if dev itself dies
// (kill -9), so that no orphan keeps the dev ports busy.
func devSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
