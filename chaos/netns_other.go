//go:build !linux

package chaos

import (
	"errors"
	"os/exec"
)

var errNoNetNS = errors.New("chaos: network namespaces need Linux")

// NetNSSupport says why this process cannot run nodes in a network
// namespace: only Linux has them.
func NetNSSupport() error { return errNoNetNS }

// NetNSCommand needs Linux.
func NetNSCommand(args []string, env []string) (*exec.Cmd, error) { return nil, errNoNetNS }

// SetupNetNS needs Linux.
func SetupNetNS() error { return errNoNetNS }
