//go:build unix && !linux

package main

import "syscall"

// devSysProcAttr puts each dev child in its own process group, so that a
// terminal's Ctrl-C reaches only "ringkv dev", which then stops the children
// in order.
func devSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
