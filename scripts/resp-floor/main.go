// Command resp-floor is the floor a ringkv node's Redis protocol front end
// is measured against: a server that parses RESP arrays and answers SET
// with +OK and GET with a fixed 100-byte value, keeping and syncing
// nothing. It serves either with a goroutine per connection, as ringkv
// does, or on gnet's event loops, one per core, as Redis serves on one.
// run.sh compares both with redis-server under redis-benchmark; see
// docs/benchmarks.md.
//
// It is a measuring tool, not part of ringkv: its own module, so that its
// dependency stays out of ringkv's.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"

	"github.com/panjf2000/gnet/v2"
)

var bulk = []byte("$100\r\n" + string(bytes.Repeat([]byte("v"), 100)) + "\r\n")

// answer appends the replies to the whole commands at the start of in and
// returns them with the number of bytes those commands took. A command is
// a RESP array of bulk strings; one that is not yet whole is left for
// later. Malformed input is an error.
func answer(out, in []byte) ([]byte, int, error) {
	used := 0
	for used < len(in) {
		n, get, err := command(in[used:])
		if err != nil || n == 0 {
			return out, used, err
		}
		used += n
		if get {
			out = append(out, bulk...)
		} else {
			out = append(out, "+OK\r\n"...)
		}
	}
	return out, used, nil
}

// command parses one command at the start of b: its length (0 if it is not
// whole yet) and whether it is a GET.
func command(b []byte) (n int, get bool, err error) {
	args, p, err := header(b, '*')
	if err != nil || p == 0 {
		return 0, false, err
	}
	for i := range args {
		size, q, err := header(b[p:], '$')
		if err != nil || q == 0 {
			return 0, false, err
		}
		p += q
		if len(b) < p+size+2 {
			return 0, false, nil
		}
		if i == 0 {
			get = bytes.EqualFold(b[p:p+size], []byte("GET"))
		}
		p += size + 2
	}
	return p, get, nil
}

// header parses a line "<kind><count>\r\n" at the start of b: the count
// and the line's length (0 if the line is not whole yet).
func header(b []byte, kind byte) (count, n int, err error) {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		if len(b) > 32 {
			return 0, 0, fmt.Errorf("line too long")
		}
		return 0, 0, nil
	}
	if end < 2 || b[0] != kind {
		return 0, 0, fmt.Errorf("expected %q line, got %q", kind, b[:end])
	}
	count, err = strconv.Atoi(string(b[1:end]))
	if err != nil || count < 0 || count > 1<<20 {
		return 0, 0, fmt.Errorf("bad count %q", b[1:end])
	}
	return count, end + 2, nil
}

// loops serves on gnet's event loops.
type loops struct{ gnet.BuiltinEventEngine }

// OnTraffic answers every whole command the connection has buffered.
func (loops) OnTraffic(c gnet.Conn) gnet.Action {
	in, _ := c.Peek(-1)
	out, used, err := answer(nil, in)
	if err != nil {
		return gnet.Close
	}
	_, _ = c.Discard(used)
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	return gnet.None
}

// serveConn answers one connection's commands on its own goroutine,
// writing the replies once no more input is buffered.
func serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	var in, out []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:n]...)
		var used int
		out, used, err = answer(out, in)
		if err != nil {
			return
		}
		in = append(in[:0], in[used:]...)
		if len(out) > 0 && r.Buffered() == 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

func main() {
	mode := flag.String("mode", "goroutine", "goroutine (one per connection) or gnet (event loops)")
	addr := flag.String("addr", "127.0.0.1:16400", "listen address")
	flag.Parse()
	switch *mode {
	case "goroutine":
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Fatal(err)
			}
			go serveConn(c)
		}
	case "gnet":
		err := gnet.Run(&loops{}, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithLogger(quiet{}))
		log.Fatal(err)
	default:
		fmt.Fprintf(os.Stderr, "resp-floor: unknown mode %q\n", *mode)
		os.Exit(2)
	}
}

// quiet drops gnet's log lines.
type quiet struct{}

func (quiet) Debugf(string, ...any)             {}
func (quiet) Infof(string, ...any)              {}
func (quiet) Warnf(string, ...any)              {}
func (quiet) Errorf(string, ...any)             {}
func (quiet) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
