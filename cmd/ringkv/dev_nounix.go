//go:build !unix

package main

import "syscall"

// devSysProcAttr has nothing to set where process groups do not exist;
// children are still stopped by "ringkv dev" on Ctrl-C.
func devSysProcAttr() *syscall.SysProcAttr { return nil }
