package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseIdentity feeds raw bytes to the IDENTITY parser: no panic, and
// what it accepts has a node and a well-formed incarnation and reads back
// the same after encoding as loadIdentity writes it.
func FuzzParseIdentity(f *testing.F) {
	for _, seed := range []string{
		`{"node_id":"n1","incarnation":"abcdefgh2345","created":"2026-01-02T03:04:05Z"}`,
		"{\n  \"node_id\": \"n1\",\n  \"incarnation\": \"q7x2m4k9z3aa\",\n  \"created\": \"x\"\n}\n",
		`{"node_id":"","incarnation":"abcdefgh2345"}`,
		`{"node_id":"n1","incarnation":"ABCDEFGH2345"}`,
		`{"node_id":"n1","incarnation":"abc"}`,
		`[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]`,
		`{"node_id":"n1","incarnation":"abcdefgh2345","node_id":"n2"}`,
		"",
		"null",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := parseIdentity(data)
		if err != nil {
			return
		}
		if len(data) > maxIdentityBytes || id.NodeID == "" || !validActor(id.Incarnation) {
			t.Fatalf("accepted %q as %+v", data, id)
		}
		enc, err := json.MarshalIndent(id, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseIdentity(append(enc, '\n'))
		if err != nil || back != id {
			t.Fatalf("round trip of %+v: %+v, %v", id, back, err)
		}
	})
}

// FuzzParseActor feeds raw bytes to the ACTOR parser: no panic, and an
// accepted actor is exactly what newIncarnation could have made.
func FuzzParseActor(f *testing.F) {
	for _, seed := range []string{"abcdefgh2345\n", "abcdefgh2345", "abcdefgh2345 17\n", "abcdefgh2345 4611686018427387905\n", "abcdefgh2345 -1", "abcdefgh2345 1 2", "  q7x2m4k9z3aa \r\n", "abcdefgh234", "abcdefgh23456", "ABCDEFGH2345", "abcdefgh23:5", "abcdefgh2\x00345", ""} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(newIncarnation() + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		actor, counter, err := parseActor(data)
		if err != nil {
			return
		}
		if !validActor(actor) || !bytes.Contains(data, []byte(actor)) || counter > maxSavedCounter {
			t.Fatalf("accepted %q as %q %d", data, actor, counter)
		}
		back, c2, err := parseActor(fmt.Appendf(nil, "%s %d\n", actor, counter))
		if err != nil || back != actor || c2 != counter {
			t.Fatalf("round trip of %q %d: %q %d, %v", actor, counter, back, c2, err)
		}
	})
}

// Hostile IDENTITY and ACTOR files are refused as corrupt, naming the file,
// without reading more than a few KiB of them.
func TestHostileIdentityFiles(t *testing.T) {
	huge := strings.Repeat(" ", 64<<20)
	tests := []struct {
		name, file, content string
	}{
		{"identity with a newline in the incarnation", identityFile, `{"node_id":"n1","incarnation":"abcdefgh23\n5"}`},
		{"identity with upper case", identityFile, `{"node_id":"n1","incarnation":"ABCDEFGH2345"}`},
		{"identity of 64 MiB", identityFile, `{"node_id":"n1","incarnation":"abcdefgh2345"}` + huge},
		{"actor with a colon", actorFile, "abcdefgh23:5\n"},
		{"actor with a NUL", actorFile, "abcdefg\x002345"},
		{"actor of 64 MiB", actorFile, "abcdefgh2345" + huge},
		{"actor with a negative counter", actorFile, "abcdefgh2345 -1\n"},
		{"actor with a huge counter", actorFile, "abcdefgh2345 99999999999999999999\n"},
		{"actor with three fields", actorFile, "abcdefgh2345 1 2\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			e := openT(t, cfg)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(cfg)
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.HasSuffix(ce.File, tc.file) {
				t.Fatalf("Open = %v, want a CorruptError naming %s", err, tc.file)
			}
		})
	}
}
