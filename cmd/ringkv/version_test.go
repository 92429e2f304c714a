package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/node"
)

// redisINFO sends INFO over RESP to addr and returns the bulk reply.
func redisINFO(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "*1\r\n$4\r\nINFO\r\n"); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "$") {
		t.Fatalf("INFO reply %q: %v", line, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		t.Fatalf("INFO length %q", line)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rd, buf); err != nil {
		t.Fatal(err)
	}
	return string(buf)
}

// "ringkv version" names the version a running server reports in Redis
// INFO (ringkv_version), so an operator comparing them sees one number.
func TestVersionAgreesWithINFO(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Node.DataDir = t.TempDir()
	cfg.Listen = node.ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	cfg.Gossip.Profile = "local"
	cfg.Cluster.Partitions = 271
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	info := redisINFO(t, n.Addrs().RESP)
	var server string
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "ringkv_version:"); ok {
			server = v
		}
	}
	code, out, _ := runCLI(t, "", "version", "--json")
	var v buildVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("version --json: code %d out %q", code, out)
	}
	if server == "" || v.Version != server {
		t.Fatalf("ringkv version says %q, INFO says ringkv_version:%q", v.Version, server)
	}
	code, out, _ = runCLI(t, "", "version")
	if want := fmt.Sprintf("ringkv %s ", server); code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("version = %q, want it to start with %q", out, want)
	}
}

// An unknown command is a usage error: exit code 2, like a bad flag or a
// wrong number of arguments, with a pointer to the help.
func TestUnknownCommandExits2(t *testing.T) {
	code, _, errOut := runCLI(t, "", "nosuch")
	if code != 2 || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Fatalf("code %d stderr %q, want 2 and the unknown command named", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "memebrs")
	if code != 2 || !strings.Contains(errOut, "members") {
		t.Fatalf("code %d stderr %q, want 2 and a suggestion", code, errOut)
	}
	if code, out, _ := runCLI(t, ""); code != 0 || !strings.Contains(out, "Usage:") {
		t.Fatalf("no arguments: code %d out %q, want the help and 0", code, out)
	}
}
