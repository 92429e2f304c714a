//go:build !unix

package chaos

import (
	"errors"
	"syscall"
)

// Without Unix signals only a kill is possible; a chaos run needs Unix.

func childSysProcAttr() *syscall.SysProcAttr { return nil }

var errNoSignals = errors.New("chaos: SIGTERM, SIGSTOP and SIGCONT need a Unix system")

func killNode(p *process) error   { return p.cmd.Process.Kill() }
func termNode(p *process) error   { return p.cmd.Process.Kill() }
func freezeNode(p *process) error { return errNoSignals }
func thawNode(p *process) error   { return errNoSignals }
