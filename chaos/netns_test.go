package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// inNamespace runs the calling test again in a network namespace of its
// own and returns false (the caller returns at once), or, in that child,
// returns true. Without namespace support the test is skipped with the
// reason.
func inNamespace(t *testing.T) bool {
	t.Helper()
	if InNetNS() {
		return true
	}
	if err := NetNSSupport(); err != nil {
		t.Skipf("no network namespace for cuts: %v", err)
	}
	limit := 3 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(d)-5*time.Second)
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.v", "-test.count=1", "-test.timeout=" + limit.String()}
	cmd, err := NetNSCommand(args, []string{binaryEnv + "=" + binary})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child's -test.timeout ends it; this is the backstop.
	kill := time.AfterFunc(limit+10*time.Second, func() { _ = cmd.Process.Kill() })
	err = cmd.Wait()
	kill.Stop()
	t.Logf("in its network namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("the test in its network namespace: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatal("the test did not pass in its network namespace (skipped or not run)")
	}
	return false
}

// dialFrom connects from the local address src to dst within a second.
func dialFrom(src string, dst net.Addr) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
	conn, err := d.Dial("tcp", dst.String())
	if err != nil {
		return err
	}
	return conn.Close()
}

// udpArrives reports whether a datagram from src reaches the socket to
// within half a second.
func udpArrives(t *testing.T, src string, to *net.UDPConn) bool {
	t.Helper()
	from, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	// A dropped datagram may fail at once (EPERM) or vanish.
	_, _ = from.WriteTo([]byte("x"), to.LocalAddr())
	_ = to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 16)
	_, _, err = to.ReadFrom(buf)
	return err == nil
}

// TestCutHeal proves the iptables cuts with plain sockets bound to node
// addresses, in a network namespace.
func TestCutHeal(t *testing.T) {
	t.Parallel()
	if !inNamespace(t) {
		return
	}
	c := &Cluster{cfg: ClusterConfig{IPs: true}, nodes: []*node{
		{name: "n1", ip: nodeIP(0), out: &nodeOutput{}},
		{name: "n2", ip: nodeIP(1), out: &nodeOutput{}},
	}}
	ln, err := net.Listen("tcp", nodeIP(1)+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for range 1000 {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	})
	if err := dialFrom(nodeIP(0), ln.Addr()); err != nil {
		t.Fatalf("dial n1 -> n2 before any cut: %v", err)
	}

	if err := c.Cut([]string{"n1"}, []string{"n2"}, false); err != nil {
		t.Fatal(err)
	}
	if err := dialFrom(nodeIP(0), ln.Addr()); err == nil {
		t.Fatal("dial n1 -> n2 succeeded through a cut")
	}
	// The harness's own address is not cut.
	if err := dialFrom("127.0.0.1", ln.Addr()); err != nil {
		t.Errorf("dial 127.0.0.1 -> n2 during a cut between n1 and n2: %v", err)
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := dialFrom(nodeIP(0), ln.Addr()); err != nil {
		t.Fatalf("dial n1 -> n2 after Heal: %v", err)
	}

	// One way: datagrams n1 -> n2 are dropped, n2 -> n1 arrive.
	at1, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(nodeIP(0))})
	if err != nil {
		t.Fatal(err)
	}
	defer at1.Close()
	at2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(nodeIP(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer at2.Close()
	if err := c.Cut([]string{"n1"}, []string{"n2"}, true); err != nil {
		t.Fatal(err)
	}
	if udpArrives(t, nodeIP(0), at2) {
		t.Error("a datagram n1 -> n2 crossed a one-way cut n1 -/-> n2")
	}
	if !udpArrives(t, nodeIP(1), at1) {
		t.Error("a datagram n2 -> n1 was dropped by a one-way cut n1 -/-> n2")
	}

	if err := c.Cut([]string{"n1"}, []string{"n1"}, false); err == nil {
		t.Error("a cut of n1 from itself was accepted")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if exec.Command("iptables", "-w", "5", "-n", "-L", chainName).Run() == nil {
		t.Errorf("chain %s still exists after Stop", chainName)
	}
	if udpArrives(t, nodeIP(0), at2) == false {
		t.Error("datagrams n1 -> n2 still dropped after Stop")
	}
}

// TestNetNSCluster starts three nodes on their own addresses and fixed
// ports in a network namespace, runs the isolate scenario briefly, and
// settles.
func TestNetNSCluster(t *testing.T) {
	t.Parallel()
	if !inNamespace(t) {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Binary: binary, Dir: t.TempDir(), Nodes: 3, IPs: true})
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, c)
	defer c.Stop()
	if got, want := c.HTTP("n2"), "127.0.0.3:8080"; got != want {
		t.Errorf("HTTP(n2) = %s, want %s", got, want)
	}

	// isolate-minority needs 5 nodes; with 3, isolate takes one.
	sc, err := ScenarioByName("isolate")
	if err != nil {
		t.Fatal(err)
	}
	var windows []FaultWindow
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	err = sc.Run(sctx, c, rand.New(rand.NewPCG(3, 4)), func(w FaultWindow) { windows = append(windows, w) })
	scancel()
	t.Logf("isolate windows: %+v", windows)
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 1 || windows[0].Kind != FaultCut || len(windows[0].Nodes) != 1 || !strings.Contains(windows[0].Detail, "<-/->") || windows[0].End.IsZero() {
		t.Errorf("isolate windows %+v, want one cut of one node, healed", windows)
	}
	if err := Settle(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestIptablesRefusedOnHost: no rule is ever written outside the
// namespace.
func TestIptablesRefusedOnHost(t *testing.T) {
	if InNetNS() {
		t.Skip("runs outside the namespace")
	}
	if err := iptables("-n", "-L"); !errors.Is(err, errHostFirewall) {
		t.Errorf("iptables outside the namespace: %v, want errHostFirewall", err)
	}
	// An inherited or copied marker naming this very namespace, or a
	// made-up one, does not make the host a namespace.
	if self, err := os.Readlink(netnsSelf); err == nil {
		for _, v := range []string{self, "1", "yes"} {
			t.Setenv(netnsEnv, v)
			if InNetNS() {
				t.Errorf("InNetNS with %s=%q in the namespace %s", netnsEnv, v, self)
			}
			if err := iptables("-n", "-L"); !errors.Is(err, errHostFirewall) {
				t.Errorf("iptables with %s=%q: %v, want errHostFirewall", netnsEnv, v, err)
			}
		}
	}
	c := &Cluster{cfg: ClusterConfig{IPs: true}, nodes: []*node{{name: "n1", ip: nodeIP(0)}, {name: "n2", ip: nodeIP(1)}}}
	if err := c.Cut([]string{"n1"}, []string{"n2"}, false); !errors.Is(err, errHostFirewall) {
		t.Errorf("Cut outside the namespace: %v, want errHostFirewall", err)
	}
	if got := cutRules([]string{"a", "b"}, []string{"c"}, false); !slices.EqualFunc(got, [][]string{
		dropRule("a", "c"), dropRule("c", "a"), dropRule("b", "c"), dropRule("c", "b"),
	}, slices.Equal) {
		t.Errorf("cutRules two ways = %v", got)
	}
	if got := cutRules([]string{"a"}, []string{"c"}, true); len(got) != 1 || !slices.Equal(got[0], dropRule("a", "c")) {
		t.Errorf("cutRules one way = %v", got)
	}
}
