package chaos

import (
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	out := &nodeOutput{name: "n1"}
	w := newLineWriter(out)
	readies := 0
	w.setReady(func() { readies++ })
	chunks := []string{
		"first li", "ne\nsecond\n",
		"ringkv ready name=n1 http=127.0.0.1:1 resp=127.0.0.1:2 rpc=127.0.0.1:3 gossip=127.0.0.1:4\n",
		"ringkv ready name=n1 http=x resp=x rpc=x gossip=x\n",
		"listen tcp 127.0.0.1:1: bind: address already in use\n",
		"tail without newline",
	}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	w.flush()
	got := out.last(100)
	want := []string{"first line", "second"}
	if got[0] != want[0] || got[1] != want[1] || got[len(got)-1] != "tail without newline" || len(got) != 6 {
		t.Errorf("lines %q", got)
	}
	if readies != 1 || w.readyAddrs()["http"] != "127.0.0.1:1" {
		t.Errorf("ready seen %d times, addrs %v; want once, the first line's", readies, w.readyAddrs())
	}
	if !w.sawBindFailure() {
		t.Error("bind failure not seen")
	}

	// A line longer than maxLine is cut, never held whole.
	long := strings.Repeat("x", 2*maxLine+10) + "\n"
	if _, err := w.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	got = out.last(3)
	if len(got[0]) != maxLine || len(got[1]) != maxLine || len(got[2]) != 10 {
		t.Errorf("a long line became pieces of %d, %d, %d bytes", len(got[0]), len(got[1]), len(got[2]))
	}
}

func TestNodeOutputTail(t *testing.T) {
	out := &nodeOutput{name: "n1"}
	for i := range tailLines + 5 {
		out.add(strings.Repeat("y", i%7))
	}
	got := out.last(tailLines + 100)
	if len(got) != tailLines {
		t.Fatalf("%d lines kept, want %d", len(got), tailLines)
	}
	// The oldest kept is line 5, the newest line tailLines+4.
	if len(got[0]) != 5%7 || len(got[len(got)-1]) != (tailLines+4)%7 {
		t.Errorf("ring order wrong: first %q, last %q", got[0], got[len(got)-1])
	}
	if len(out.last(2)) != 2 {
		t.Error("last(2) is not 2 lines")
	}
}

func TestParseReady(t *testing.T) {
	fields, ok := parseReady("ringkv ready name=n1 http=127.0.0.1:8001 resp=127.0.0.1:6380 rpc=127.0.0.1:7001 gossip=127.0.0.1:9001")
	if !ok || fields["name"] != "n1" || fields["gossip"] != "127.0.0.1:9001" {
		t.Errorf("parseReady = %v, %v", fields, ok)
	}
	for _, bad := range []string{"", "ringkv ready", "ringkv ready name=n1", "time=... msg=ready", "ringkv ready name=n1 http"} {
		if _, ok := parseReady(bad); ok {
			t.Errorf("parseReady(%q) accepted", bad)
		}
	}
}
