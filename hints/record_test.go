package hints

import (
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/vclock"
)

func TestRecordRoundTrip(t *testing.T) {
	s := mint(mint(nil, "a", "x"), "b", "y")
	rec, err := encodeRecord([]byte("k1"), s, 42)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Key) != "k1" || got.Since != 42 || !got.Siblings.Equal(s) {
		t.Fatalf("round trip: got %+v", got)
	}
}

func TestForgetRecordRoundTrip(t *testing.T) {
	rec, err := encodeForget([]byte("k1"), -42)
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != forgetVersion {
		t.Fatalf("version byte %d, want %d", rec[0], forgetVersion)
	}
	got, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Forget || string(got.Key) != "k1" || got.Since != -42 || got.Siblings != nil {
		t.Fatalf("round trip: got %+v", got)
	}
}

// Version 1 records written before forget records existed (bytes made by
// that code) still decode, as hint records.
func TestDecodeRecordV1Golden(t *testing.T) {
	for _, tc := range []struct {
		hex   string
		key   string
		since int64
		value string
	}{
		{"0193c4026b31919592a162cf00000000000000019192a161cf0000000000000001c40179c2d30000000000000001d317979cfe362a0000", "k1", 1_700_000_000_000_000_000, "y"},
		{"0193c4026b32919592a161cf000000000000000190c4027632c2d30000000000000001d317979cfe71c4ca00", "k2", 1_700_000_001_000_000_000, "v2"},
	} {
		b, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if r.Forget || string(r.Key) != tc.key || r.Since != tc.since || len(r.Siblings) != 1 || string(r.Siblings[0].Value) != tc.value {
			t.Fatalf("%s: decoded %+v", tc.key, r)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good, _ := encodeRecord([]byte("k"), mint(nil, "a", "v"), 1)
	emptyKey, _ := encodeRecord(nil, mint(nil, "a", "v"), 1)
	emptySet, _ := encodeRecord([]byte("k"), nil, 1)
	bad := vclock.Siblings{{Dot: vclock.Dot{Actor: "", Counter: 1}}}
	badSet, _ := encodeRecord([]byte("k"), bad, 1)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0xc0),
		"empty key":     emptyKey,
		"empty set":     emptySet,
		"bad siblings":  badSet,
		"not msgpack":   {recordVersion, 0xc1},
		"huge length":   {recordVersion, 0x93, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"wrong type":    {recordVersion, 0x01},
		"array too big": {recordVersion, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		// Forget records: exactly [key bin, since int].
		"forget empty":         {forgetVersion},
		"forget empty key":     {forgetVersion, 0x92, 0xc4, 0x00, 0x01},
		"forget nil key":       {forgetVersion, 0x92, 0xc0, 0x01},
		"forget one element":   {forgetVersion, 0x91, 0xc4, 0x01, 'k'},
		"forget three":         {forgetVersion, 0x93, 0xc4, 0x01, 'k', 0x01, 0x01},
		"forget since not int": {forgetVersion, 0x92, 0xc4, 0x01, 'k', 0xc4, 0x00},
		"forget key not bytes": {forgetVersion, 0x92, 0x92, 0x01, 0x01, 0x01},
		"forget trailing":      {forgetVersion, 0x92, 0xc4, 0x01, 'k', 0x01, 0xc0},
		"forget truncated":     {forgetVersion, 0x92, 0xc4, 0x05, 'k'},
		"forget not array":     {forgetVersion, 0x01},
		"forget huge key":      {forgetVersion, 0x92, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"hint as forget":       append([]byte{forgetVersion}, good[1:]...),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeRecord(b); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("decodeRecord = %v, want ErrBadRecord", err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []vclock.Siblings{mint(nil, "a", "v"), mint(mint(nil, "a", "x"), "b", "")} {
		rec, _ := encodeRecord([]byte("key"), s, 7)
		f.Add(rec)
	}
	for _, since := range []int64{0, 7, -1, 1_700_000_000_000_000_000} {
		rec, _ := encodeForget([]byte("key"), since)
		f.Add(rec)
	}
	if data, err := os.ReadFile("testdata/old_records.hex"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			_, hx, _ := strings.Cut(line, " ")
			if b, err := hex.DecodeString(hx); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte{recordVersion})
	f.Add([]byte{forgetVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		var again []byte
		if r.Forget {
			again, err = encodeForget(r.Key, r.Since)
		} else {
			again, err = encodeRecord(r.Key, r.Siblings, r.Since)
		}
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if r2.Forget != r.Forget || string(r2.Key) != string(r.Key) || r2.Since != r.Since || !r2.Siblings.Equal(r.Siblings) {
			t.Fatal("decode(encode(r)) != r")
		}
	})
}

func TestDirName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"node1", "node1"},
		{"n_1-a", "n_1-a"},
		{"127.0.0.1:7001", "127%2E0%2E0%2E1%3A7001"},
		{"..", "%2E%2E"},
		{"a/b", "a%2Fb"},
		{"%", "%25"},
		{"é", "%C3%A9"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, dirName(tc.in)); diff != "" {
				t.Fatalf("dirName(%q) (-want +got):\n%s", tc.in, diff)
			}
			back, ok := targetName(tc.want)
			if !ok || back != tc.in {
				t.Fatalf("targetName(%q) = %q, %v", tc.want, back, ok)
			}
		})
	}
	for _, bad := range []string{"", ".", "a.b", "%2", "%zz", "%2e", "%41"} {
		if n, ok := targetName(bad); ok {
			t.Errorf("targetName(%q) = %q, want refused", bad, n)
		}
	}
}

func FuzzDirName(f *testing.F) {
	f.Add("node-1")
	f.Add("127.0.0.1:7001")
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		d := dirName(s)
		if d == "." || d == ".." {
			t.Fatalf("dirName(%q) = %q", s, d)
		}
		back, ok := targetName(d)
		if !ok || back != s {
			t.Fatalf("targetName(dirName(%q)) = %q, %v", s, back, ok)
		}
	})
}
