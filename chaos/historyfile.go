package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A history file keeps a run's operations, fault windows and final reads
// so a failing run can be checked again. It is JSON lines: a header
// {"type":"header","version":1}, then one record per line, each with a
// "type" of "op", "window" or "final" and the fields of Op (kind and
// outcome spelled as their String), FaultWindow or FinalRead in
// snake_case. Times are RFC 3339 with nanoseconds. Strings are JSON
// strings, so a value that is not UTF-8 (only a corrupt store returns
// one) is kept with its bad bytes replaced.

// historyVersion is the version in the header this package writes and
// reads.
const historyVersion = 1

// Bounds on a history file, which may come from anywhere.
const (
	maxHistoryLine    = 16 << 20
	maxHistoryRecords = 50_000_000
)

// ErrHistoryFile marks a history file that cannot be read.
var ErrHistoryFile = errors.New("chaos: bad history file")

type recordType struct {
	Type string `json:"type"`
}

type headerRecord struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
}

type opRecord struct {
	Type    string    `json:"type"`
	Client  int       `json:"client"`
	Kind    string    `json:"kind"`
	Key     string    `json:"key"`
	Value   string    `json:"value,omitempty"`
	Known   []string  `json:"known,omitempty"`
	Blind   bool      `json:"blind,omitempty"`
	Values  []string  `json:"values,omitempty"`
	Node    string    `json:"node,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
	Err     string    `json:"err,omitempty"`
}

type windowRecord struct {
	Type string `json:"type"`
	FaultWindow
}

type finalRecord struct {
	Type   string   `json:"type"`
	Key    string   `json:"key"`
	Values []string `json:"values,omitempty"`
	Err    string   `json:"err,omitempty"`
}

// WriteHistory writes a history file at path, replacing it whole (a
// temporary file, fsynced, renamed into place, and the directory fsynced).
// It streams rather than use internal/atomicfile, which takes the whole
// contents in memory and which chaos's layer row does not name.
func WriteHistory(path string, ops []Op, windows []FaultWindow, finals []FinalRead) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("chaos: write history: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(headerRecord{Type: "header", Version: historyVersion}); err != nil {
		return fmt.Errorf("chaos: write history %s: %w", path, err)
	}
	for _, op := range ops {
		rec := opRecord{Type: "op", Client: op.Client, Kind: op.Kind.String(), Key: op.Key, Value: op.Value,
			Known: op.Known, Blind: op.Blind, Values: op.Values, Node: op.Node, Start: op.Start, End: op.End,
			Outcome: op.Outcome.String(), Err: op.Err}
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("chaos: write history %s: %w", path, err)
		}
	}
	for _, w := range windows {
		if err := enc.Encode(windowRecord{Type: "window", FaultWindow: w}); err != nil {
			return fmt.Errorf("chaos: write history %s: %w", path, err)
		}
	}
	for _, fr := range finals {
		if err := enc.Encode(finalRecord{Type: "final", Key: fr.Key, Values: fr.Values, Err: fr.Err}); err != nil {
			return fmt.Errorf("chaos: write history %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("chaos: write history %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("chaos: write history %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chaos: write history %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("chaos: write history: %w", err)
	}
	// Without this a crash can lose the rename, and with it the history
	// of the run that crashed the machine.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("chaos: write history %s: fsync directory: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// ReadHistory reads a file WriteHistory wrote. A malformed file (lines
// over 16 MiB, over 50 million records, an unknown type, kind or
// outcome, or another version) is an error wrapping ErrHistoryFile that
// names the line.
func ReadHistory(path string) (ops []Op, windows []FaultWindow, finals []FinalRead, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chaos: read history: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), maxHistoryLine)
	line := 0
	header := false
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s line %d: %s", ErrHistoryFile, path, line, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if line > maxHistoryRecords {
			return nil, nil, nil, bad("more than %d records", maxHistoryRecords)
		}
		var rt recordType
		if err := json.Unmarshal(b, &rt); err != nil {
			return nil, nil, nil, bad("%v", err)
		}
		if !header && rt.Type != "header" {
			return nil, nil, nil, bad("no header: record type %q", rt.Type)
		}
		switch rt.Type {
		case "header":
			var h headerRecord
			if err := json.Unmarshal(b, &h); err != nil {
				return nil, nil, nil, bad("%v", err)
			}
			if header || h.Version != historyVersion {
				return nil, nil, nil, bad("header version %d (want %d, once, first)", h.Version, historyVersion)
			}
			header = true
		case "op":
			op, err := decodeOp(b)
			if err != nil {
				return nil, nil, nil, bad("%v", err)
			}
			ops = append(ops, op)
		case "window":
			var w windowRecord
			if err := json.Unmarshal(b, &w); err != nil {
				return nil, nil, nil, bad("%v", err)
			}
			windows = append(windows, w.FaultWindow)
		case "final":
			var fr finalRecord
			if err := json.Unmarshal(b, &fr); err != nil {
				return nil, nil, nil, bad("%v", err)
			}
			finals = append(finals, FinalRead{Key: fr.Key, Values: fr.Values, Err: fr.Err})
		default:
			return nil, nil, nil, bad("record type %q", rt.Type)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, nil, fmt.Errorf("%w %s line %d: longer than %d bytes", ErrHistoryFile, path, line+1, maxHistoryLine)
		}
		return nil, nil, nil, fmt.Errorf("chaos: read history %s: %w", path, err)
	}
	if !header {
		return nil, nil, nil, fmt.Errorf("%w %s: empty", ErrHistoryFile, path)
	}
	return ops, windows, finals, nil
}

func decodeOp(b []byte) (Op, error) {
	var r opRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Op{}, err
	}
	op := Op{Client: r.Client, Key: r.Key, Value: r.Value, Known: r.Known, Blind: r.Blind, Values: r.Values,
		Node: r.Node, Start: r.Start, End: r.End, Err: r.Err}
	switch r.Kind {
	case "read":
		op.Kind = Read
	case "write":
		op.Kind = Write
	default:
		return Op{}, fmt.Errorf("op kind %q", r.Kind)
	}
	switch r.Outcome {
	case "ok":
		op.Outcome = OK
	case "failed":
		op.Outcome = Failed
	case "unknown":
		op.Outcome = Unknown
	default:
		return Op{}, fmt.Errorf("op outcome %q", r.Outcome)
	}
	return op, nil
}
