package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/client"
)

// leave without --no-wait prints the change's progress and returns once
// the leaving node has stopped answering.
func TestLeaveWaitsUntilTheNodeStops(t *testing.T) {
	var srv *httptest.Server
	var rings atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/leave", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(client.OKBody{OK: true, Message: "n3 is leaving"})
	})
	mux.HandleFunc("GET /v1/ring", func(w http.ResponseWriter, _ *http.Request) {
		n := int(rings.Add(1))
		rj := client.Ring{
			Plan:      &client.Plan{Epoch: 5, Members: []string{"n1", "n2", "n3"}, Target: []string{"n1", "n2"}},
			Transfers: map[string]client.Transfer{"n1": {Epoch: 5, Pending: 3 - n, Done: n, BytesLeft: 2048}},
		}
		if n >= 2 {
			rj.Plan = &client.Plan{Epoch: 6, Members: []string{"n1", "n2"}}
		}
		_ = json.NewEncoder(w).Encode(rj)
		if n == 2 {
			go srv.Close() // the node finished its leave and stopped
		}
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()

	code, out, errOut := runCLI(t, "", "leave", "--node", srv.Listener.Addr().String())
	if code != 0 {
		t.Fatalf("leave exit code %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"OK: n3 is leaving", "plan 5: moving to n1 n2; partitions copied 1 of 3, about 2.0 KiB left",
		"plan 6: serving n1 n2", "the node has left the ring and stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("leave output lacks %q:\n%s", want, out)
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, tt := range []struct {
		done, total int
		want        string
	}{
		{0, 4, "[....]"}, {2, 4, "[##..]"}, {4, 4, "[####]"}, {0, 0, "[####]"},
	} {
		if got := progressBar(tt.done, tt.total, 4); got != tt.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

// During a change, ring prints the plan and one row per node with what it
// received, has left and sent.
func TestPrintPlanDuringAChange(t *testing.T) {
	var b strings.Builder
	rj := client.Ring{
		Plan: &client.Plan{Epoch: 7, Members: []string{"n1", "n2", "n3"}, Target: []string{"n1", "n2", "n3", "n4"}},
		Transfers: map[string]client.Transfer{
			"n4": {Epoch: 7, Pending: 10, InFlight: 2, Done: 12, Keys: 300, Bytes: 3 << 20, BytesLeft: 1 << 20, RateBytes: 32e6},
			"n1": {Epoch: 7, BytesSent: 1 << 20},
		},
	}
	if err := printPlan(&b, rj, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"plan 7: moving from n1 n2 n3", "to n1 n2 n3 n4", "BYTES OUT",
		"n4    10", "3.0 MiB", "1.0 MiB", "[##########..........]"} {
		if !strings.Contains(out, want) {
			t.Errorf("printPlan output lacks %q:\n%s", want, out)
		}
	}
}
