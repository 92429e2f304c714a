package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
)

// Replace is Write plus a removal that comes first: a crash before any
// of its steps, with unsynced bytes dropped or torn, still leaves the old
// file or the new one.
func TestReplaceIsAtomicAcrossCrashes(t *testing.T) {
	replace := func(fsys vfs.FS, dir, name string, data []byte) error {
		return Replace(fsys, filepath.Join(dir, name), data)
	}
	for _, b := range checkAtomic(t, replace) {
		t.Error(b)
	}
}

// What an earlier crash or someone else left at the temp name, a torn
// temp file with looser permissions or a link, decides neither the new
// file's contents nor its mode, and is gone afterwards; a link's target
// is not written.
func TestReplaceOverStaleTemp(t *testing.T) {
	leftovers := map[string]func(tmp, victim string) error{
		"torn temp file 0666":  func(tmp, _ string) error { return os.WriteFile(tmp, []byte("half a k"), 0o666) },
		"link to another file": func(tmp, victim string) error { return os.Symlink(victim, tmp) },
	}
	for what, leave := range leftovers {
		for _, mode := range []os.FileMode{0o600, 0o644} {
			dir := t.TempDir()
			path := filepath.Join(dir, "ca.key")
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("victim"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("old key"), mode); err != nil {
				t.Fatal(err)
			}
			if err := leave(path+TempSuffix, victim); err != nil {
				t.Fatal(err)
			}
			if err := Replace(vfs.OSFS{FileMode: mode}, path, []byte("new key")); err != nil {
				t.Fatalf("%s, mode %#o: %v", what, mode, err)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "new key" {
				t.Errorf("%s, mode %#o: ca.key reads %q, %v", what, mode, b, err)
			}
			st, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := st.Mode().Perm(); !st.Mode().IsRegular() || perm&^mode != 0 || perm&0o600 != 0o600 {
				t.Errorf("%s, mode %#o: ca.key is %v, want a regular file of at most %#o", what, mode, st.Mode(), mode)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("%s, mode %#o: the directory holds %d entries, want only ca.key", what, mode, len(ents))
			}
			if b, _ := os.ReadFile(victim); string(b) != "victim" {
				t.Errorf("%s, mode %#o: the link's target was written: %q", what, mode, b)
			}
		}
	}
}

// planter is OSFS with someone racing Replace: right before the first
// create of a temp file it plants something at that very name.
type planter struct {
	vfs.OSFS
	plant   func(tmp string) error
	planted bool
}

func (p *planter) before(name string) error {
	if p.planted {
		return nil
	}
	p.planted = true
	return p.plant(name)
}

func (p *planter) Create(name string) (vfs.File, error) {
	if err := p.before(name); err != nil {
		return nil, err
	}
	return p.OSFS.Create(name)
}

func (p *planter) CreateExcl(name string) (vfs.File, error) {
	if err := p.before(name); err != nil {
		return nil, err
	}
	return p.OSFS.CreateExcl(name)
}

// A link or a 0666 file planted at the temp name after the stale temps
// are removed and before the temp is created is not written through: the
// key goes to a new file of the key's mode, and a link's target is
// untouched.
func TestReplaceRacedByPlant(t *testing.T) {
	plants := map[string]func(tmp, victim string) error{
		"0666 file": func(tmp, _ string) error {
			if err := os.WriteFile(tmp, nil, 0o666); err != nil {
				return err
			}
			return os.Chmod(tmp, 0o666) // past the umask
		},
		"link": func(tmp, victim string) error { return os.Symlink(victim, tmp) },
	}
	for what, plant := range plants {
		dir := t.TempDir()
		path := filepath.Join(dir, "ca.key")
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("victim"), 0o600); err != nil {
			t.Fatal(err)
		}
		var planted string
		fsys := &planter{OSFS: vfs.OSFS{FileMode: 0o600}, plant: func(tmp string) error {
			planted = tmp
			return plant(tmp, victim)
		}}
		if err := Replace(fsys, path, []byte("new key")); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "new key" {
			t.Errorf("%s: ca.key reads %q, %v", what, b, err)
		}
		if st, err := os.Lstat(path); err != nil {
			t.Error(err)
		} else if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: ca.key is %v, want a regular file 0600", what, st.Mode())
		}
		if b, _ := os.ReadFile(victim); string(b) != "victim" {
			t.Errorf("%s: the link's target was written: %q", what, b)
		}
		if b, _ := os.ReadFile(planted); what == "0666 file" && len(b) != 0 {
			t.Errorf("%s: the key was written into the planted file", what)
		}
	}
}

// Replace removes the temp files that crashed writes of older builds
// left: .NAME.tmp*, from os.CreateTemp, copies of a private key.
func TestReplaceRemovesOldTempNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")
	for _, n := range []string{".ca.key.tmp123456", "ca.key.tmp", "ca.key.tmp-abc", ".other.tmp1"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("old key copy"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Replace(vfs.OSFS{}, path, []byte("new key")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[.other.tmp1 ca.key]" {
		t.Errorf("directory holds %q, want [.other.tmp1 ca.key]", names)
	}
}

// Replace needs an FS that creates exclusively, and says so.
func TestReplaceNeedsExclFS(t *testing.T) {
	type plainFS struct{ vfs.FS }
	err := Replace(plainFS{vfs.OSFS{}}, filepath.Join(t.TempDir(), "f"), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "exclusively") {
		t.Errorf("Replace on an FS without CreateExcl: %v", err)
	}
}
