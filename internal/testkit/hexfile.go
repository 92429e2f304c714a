package testkit

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// HexLine is one line of a testdata file of captured encodings: an
// optional label (what the bytes are), a space, and the bytes in hex.
type HexLine struct {
	Label string
	Bytes []byte
}

// ReadHexFile returns the lines of path, each "LABEL HEX" or "HEX"; it
// fails tb on a file it cannot read or a line that is not hex.
func ReadHexFile(tb testing.TB, path string) []HexLine {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []HexLine
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		label, hx, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			label, hx = "", label
		}
		b, err := hex.DecodeString(hx)
		if err != nil {
			tb.Fatalf("%s line %d: %v", path, i+1, err)
		}
		out = append(out, HexLine{Label: label, Bytes: b})
	}
	return out
}
