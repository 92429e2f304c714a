package node

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// expectRefusedAndClosed writes raw, which must be refused with a protocol
// error starting with want, after which the server closes the connection.
func expectRefusedAndClosed(t *testing.T, c *respClient, raw, want string) {
	t.Helper()
	if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.conn, raw); err != nil {
		t.Fatal(err)
	}
	r, err := readReply(c.rd)
	if err != nil {
		t.Fatalf("%q: %v", raw[:min(len(raw), 40)], err)
	}
	if e, ok := r.(respError); !ok || !strings.HasPrefix(string(e), want) {
		t.Fatalf("%q: %v, want %q", raw[:min(len(raw), 40)], r, want)
	}
	if _, err := c.rd.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection still open after the refusal: %v", err)
	}
}

// mgetArgs is MGET with n keys.
func mgetArgs(n int) []string {
	args := []string{"MGET"}
	for i := range n {
		args = append(args, fmt.Sprintf("k%d", i))
	}
	return args
}

// TestRESPUnauthenticatedLimits: with tokens configured, a client that has
// not authenticated may send commands of at most respUnauthArgs arguments
// and respUnauthBytes bytes; AUTH (or HELLO ... AUTH) lifts the limits
// from the next command on, a failed AUTH does not.
func TestRESPUnauthenticatedLimits(t *testing.T) {
	addr, _ := startRESPAuth(t)
	big := strings.Repeat("e", respUnauthBytes+1)
	bigHeader := fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n", len(big)) // refused before its data is sent

	t.Run("too many arguments", func(t *testing.T) {
		c := dialRESP(t, addr)
		var raw strings.Builder
		args := mgetArgs(respUnauthArgs)
		fmt.Fprintf(&raw, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&raw, "$%d\r\n%s\r\n", len(a), a)
		}
		expectRefusedAndClosed(t, c, raw.String(), "ERR Protocol error: unauthenticated multibulk length")
	})
	t.Run("too many inline arguments", func(t *testing.T) {
		c := dialRESP(t, addr)
		expectRefusedAndClosed(t, c, strings.Join(mgetArgs(respUnauthArgs), " ")+"\r\n", "ERR Protocol error: unauthenticated multibulk length")
	})
	t.Run("too large", func(t *testing.T) {
		c := dialRESP(t, addr)
		expectRefusedAndClosed(t, c, bigHeader, "ERR Protocol error: unauthenticated command is larger than 16384 bytes")
	})
	t.Run("failed AUTH keeps the limits", func(t *testing.T) {
		c := dialRESP(t, addr)
		if r := c.do(t, "AUTH", "reader", "wrong"); r != respError(respWrongPass) {
			t.Fatalf("AUTH with a wrong token: %v", r)
		}
		expectRefusedAndClosed(t, c, bigHeader, "ERR Protocol error: unauthenticated command is larger than")
	})
	t.Run("within the limits before AUTH", func(t *testing.T) {
		c := dialRESP(t, addr)
		if r := c.do(t, mgetArgs(respUnauthArgs-1)...); r != respError(respNoAuth) {
			t.Fatalf("MGET of %d keys before AUTH: %v", respUnauthArgs-1, r)
		}
		if r, ok := c.do(t, "HELLO", "2", "AUTH", "reader", tokRead, "SETNAME", "x").([]any); !ok || len(r) != 14 {
			t.Fatalf("HELLO 2 AUTH ... SETNAME: %v", r)
		}
		if r, ok := c.do(t, "ECHO", big).([]byte); !ok || string(r) != big {
			t.Fatalf("large ECHO after HELLO ... AUTH: %.40v", r)
		}
	})
	t.Run("after AUTH", func(t *testing.T) {
		c := dialRESP(t, addr)
		// AUTH and a large command in one write: the limits are lifted
		// between the two.
		pipe := fmt.Sprintf("*3\r\n$4\r\nAUTH\r\n$6\r\nreader\r\n$%d\r\n%s\r\n", len(tokRead), tokRead) +
			bigHeader + big + "\r\n"
		if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c.conn, pipe); err != nil {
			t.Fatal(err)
		}
		if r, err := readReply(c.rd); err != nil || r != "OK" {
			t.Fatalf("AUTH: %v %v", r, err)
		}
		if r, err := readReply(c.rd); err != nil || string(r.([]byte)) != big {
			t.Fatalf("large ECHO pipelined after AUTH: %.40v %v", r, err)
		}
		if r, ok := c.do(t, mgetArgs(2*respUnauthArgs)...).([]any); !ok || len(r) != 2*respUnauthArgs {
			t.Fatalf("MGET of %d keys after AUTH: %v", 2*respUnauthArgs, r)
		}
	})
}

// TestRESPNoAuthNoUnauthLimits: without tokens there is no AUTH to wait
// for, and the usual limits apply from the first command.
func TestRESPNoAuthNoUnauthLimits(t *testing.T) {
	_, addr, _ := startRESP(t)
	c := dialRESP(t, addr)
	big := strings.Repeat("e", respUnauthBytes+1)
	if r, ok := c.do(t, "ECHO", big).([]byte); !ok || string(r) != big {
		t.Fatalf("large ECHO without tokens: %.40v", r)
	}
	if r, ok := c.do(t, mgetArgs(2*respUnauthArgs)...).([]any); !ok || len(r) != 2*respUnauthArgs {
		t.Fatalf("MGET of %d keys without tokens: %v", 2*respUnauthArgs, r)
	}
}
