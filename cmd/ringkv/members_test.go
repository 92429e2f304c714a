package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
)

func TestTransferColumn(t *testing.T) {
	still := client.Ring{Plan: &client.Plan{Epoch: 4, Members: []string{"n1", "n2"}},
		Transfers: map[string]client.Transfer{"n1": {Epoch: 4, Done: 9}}}
	if got := transferColumn(still); got != nil {
		t.Fatalf("stable plan with no work left: got %v, want no column", got)
	}
	stale := client.Ring{Plan: &client.Plan{Epoch: 4, Members: []string{"n1", "n2"}},
		Transfers: map[string]client.Transfer{"n1": {Epoch: 3, Pending: 5}}}
	if got := transferColumn(stale); got != nil {
		t.Fatalf("work left only for an older plan: got %v, want no column", got)
	}
	moving := client.Ring{Plan: &client.Plan{Epoch: 5, Members: []string{"n1", "n2"}, Target: []string{"n1", "n2", "n3"}},
		Transfers: map[string]client.Transfer{
			"n3": {Epoch: 5, Pending: 6, InFlight: 4, Done: 10, BytesLeft: 3 << 20},
			"n1": {Epoch: 4, Pending: 2, Done: 7, BytesLeft: 100}, // an older plan's progress
		}}
	got := transferColumn(moving)
	if want := "10/20 done, 4 in flight, 3.0 MiB left"; got["n3"] != want {
		t.Errorf("n3: got %q, want %q", got["n3"], want)
	}
	if want := "0/0 done, 0 in flight, 0 B left"; got["n1"] != want {
		t.Errorf("n1 (older epoch): got %q, want %q", got["n1"], want)
	}

	var out bytes.Buffer
	a := &app{stdout: &out}
	members := []client.Member{{Name: "n3", Liveness: "alive", Status: "joining"}, {Name: "n2", Liveness: "alive", Status: "joined"}}
	if err := a.printMembers(members, got); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "TRANSFER") {
		t.Fatalf("want a header with TRANSFER and two rows, got:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[1], "n2") || !strings.HasSuffix(lines[1], "-") {
		t.Errorf("n2 has no progress reported: want a row ending in -, got %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "n3") || !strings.HasSuffix(lines[2], "10/20 done, 4 in flight, 3.0 MiB left") {
		t.Errorf("n3 row: got %q", lines[2])
	}
}
