//go:build unix

package chaos

import (
	"fmt"
	"syscall"
)

// signalNode sends sig to the process group of the node's process (the
// node and anything it started).
func signalNode(p *process, sig syscall.Signal) error {
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil {
		// The group can be gone while the process is not yet reaped.
		if err == syscall.ESRCH {
			return nil
		}
		return fmt.Errorf("chaos: signal %v to process group %d: %w", sig, pid, err)
	}
	return nil
}

func killNode(p *process) error   { return signalNode(p, syscall.SIGKILL) }
func termNode(p *process) error   { return signalNode(p, syscall.SIGTERM) }
func freezeNode(p *process) error { return signalNode(p, syscall.SIGSTOP) }
func thawNode(p *process) error   { return signalNode(p, syscall.SIGCONT) }
