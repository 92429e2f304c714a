package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NetNSSupport returns nil if this process can run a chaos cluster in a
// network namespace of its own with iptables in it, else an error saying
// why not (for a test's skip message): it needs root, an iptables binary
// on PATH, and a kernel that lets it create a network namespace and
// filter in it. The check runs "iptables -L" in a throwaway namespace.
func NetNSSupport() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos: network namespaces and iptables need root")
	}
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return fmt.Errorf("chaos: no iptables on PATH: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-w", "5", "-n", "-L", "OUTPUT")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: iptables in a new network namespace: %w: %s", err, quote(out, 300))
	}
	return nil
}

// NetNSCommand returns a command that runs this program again with args
// in a new network namespace, with env added to this process's
// environment and the marker InNetNS reads. The child must call SetupNetNS
// first. It is killed if this process dies.
func NetNSCommand(args []string, env []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: finding this program to re-run it: %w", err)
	}
	parent, err := os.Readlink(netnsSelf)
	if err != nil {
		return nil, fmt.Errorf("chaos: reading this process's network namespace: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), env...), netnsEnv+"="+parent)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// SetupNetNS brings up the loopback interface of the namespace this
// process runs in (a new namespace's lo is down: nothing, not even
// 127.0.0.1, is reachable), then checks that a node address (127.0.0.2)
// can be bound. It refuses to run outside NetNSCommand's namespace.
func SetupNetNS() error {
	if !InNetNS() {
		return errors.New("chaos: SetupNetNS outside a namespace made by NetNSCommand")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chaos: socket for ioctl: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("chaos: lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("chaos: reading the flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("chaos: bringing lo up: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return fmt.Errorf("chaos: lo is up but 127.0.0.2 cannot be bound: %w", err)
	}
	return l.Close()
}
