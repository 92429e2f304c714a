package node

import (
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gofrs/flock"
)

// TestWriteCertsConcurrent: runs of WriteCerts on one new directory at
// once make one CA between them, and every certificate verifies against
// it; two runs for the same node name give one certificate and one
// ErrCertExists. Without the directory's lock, each run could make its
// own CA, the last replacing the others.
func TestWriteCertsConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	const runs = 8
	errs := make([]error, runs+1)
	var wg sync.WaitGroup
	for i := range runs + 1 {
		name := fmt.Sprintf("n%d", i)
		if i == runs {
			name = "n0" // the same name as run 0
		}
		wg.Go(func() {
			_, errs[i] = WriteCerts(CertsConfig{Dir: dir, Nodes: []string{name}})
		})
	}
	wg.Wait()
	clashes := 0
	for i, err := range errs {
		switch {
		case err == nil:
		case (i == 0 || i == runs) && errors.Is(err, ErrCertExists):
			clashes++
		default:
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if clashes != 1 {
		t.Fatalf("%d of the two runs for n0 refused, want exactly 1: %v, %v", clashes, errs[0], errs[runs])
	}
	roots := caPool(t, dir)
	for i := range runs {
		cert, err := ReadCertFile(filepath.Join(dir, fmt.Sprintf("n%d.crt", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("n%d.crt does not verify against the directory's CA: %v", i, err)
		}
	}
}

// TestWriteCertsSaysWhenItWaits: a run that finds the directory locked by
// another calls Waiting with the lock's path before it waits, and writes
// once the lock is released; a run that finds it free does not call
// Waiting.
func TestWriteCertsSaysWhenItWaits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	free := func(lock string) { t.Errorf("Waiting(%q) called with the lock free", lock) }
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Waiting: free}); err != nil {
		t.Fatal(err)
	}
	held := flock.New(filepath.Join(dir, CertsLockFile))
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n2"}, Waiting: func(lock string) { waiting <- lock }})
		done <- err
	}()
	select {
	case lock := <-waiting:
		if want := filepath.Join(dir, CertsLockFile); lock != want {
			t.Errorf("Waiting(%q), want %q", lock, want)
		}
	case err := <-done:
		t.Fatalf("WriteCerts returned (%v) while another run held the lock", err)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCertFile(filepath.Join(dir, "n2.crt")); err != nil {
		t.Fatal(err)
	}
}
