package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// goRedis returns a go-redis client of the node serving RESP on addr, with
// the library's defaults (it asks for RESP3 and settles on RESP2, and sends
// CLIENT SETINFO): the ordinary client an application would use, which is
// what ringkv's RESP listener promises to serve unmodified.
func goRedis(t *testing.T, addr string) *redis.Client {
	rc := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, // a failure is reported, not retried away
		DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// respConn is a minimal Redis-protocol client: enough to send commands as
// arrays of bulk strings and read the five reply types, as redis-cli does.
// The tests that send raw, hostile or pipelined bytes and read the replies
// one by one use it; go-redis cannot write what a client must not.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

// respError is a "-ERR ..." reply.
type respError string

func (e respError) Error() string { return string(e) }

func dialRESP(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

func (c *respConn) Close() error { return c.c.Close() }

// do sends one command and reads its reply: string for +, respError for -,
// int64 for :, []byte or nil for $, []any or nil for *.
func (c *respConn) do(args ...string) (any, error) {
	if err := c.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		return nil, err
	}
	return c.reply(0)
}

func (c *respConn) reply(depth int) (any, error) {
	if depth > 8 {
		return nil, fmt.Errorf("resp: reply nested too deep")
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("resp: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 64<<20 {
			return nil, fmt.Errorf("resp: bad bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<20 {
			return nil, fmt.Errorf("resp: bad array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.reply(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("resp: unknown reply type in %q", line)
	}
}
