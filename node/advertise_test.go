package node

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

func TestAdvertiseHost(t *testing.T) {
	private := func() (string, error) { return "10.0.0.7", nil }
	none := func() (string, error) { return "", nil }
	failing := func() (string, error) { return "", errors.New("no interfaces") }
	for _, tc := range []struct {
		name      string
		l         ListenConfig
		privateIP func() (string, error)
		host      string
		pinned    bool
		errPart   string // non-empty: an error naming this is wanted
	}{
		{"advertise wins", ListenConfig{Gossip: "0.0.0.0:9001", Advertise: "192.0.2.1"}, failing, "192.0.2.1", true, ""},
		{"concrete gossip host", ListenConfig{Gossip: "127.0.0.1:9001"}, failing, "127.0.0.1", false, ""},
		{"wildcard v4 gossip", ListenConfig{Gossip: "0.0.0.0:9001"}, private, "10.0.0.7", true, ""},
		{"wildcard v6 gossip", ListenConfig{Gossip: "[::]:9001"}, private, "10.0.0.7", true, ""},
		{"empty gossip host", ListenConfig{Gossip: ":9001"}, private, "10.0.0.7", true, ""},
		{"no private IP", ListenConfig{Gossip: "0.0.0.0:9001"}, none, "", false, "listen.advertise"},
		{"interface lookup fails", ListenConfig{Gossip: "0.0.0.0:9001"}, failing, "", false, "no interfaces"},
		{"malformed gossip", ListenConfig{Gossip: "nope"}, private, "", false, "listen.gossip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, pinned, err := advertiseHost(tc.l, tc.privateIP)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("advertiseHost = %q, %v; want an error naming %q", host, err, tc.errPart)
				}
				return
			}
			if err != nil || host != tc.host || pinned != tc.pinned {
				t.Fatalf("advertiseHost = %q, %v, %v; want %q, %v", host, pinned, err, tc.host, tc.pinned)
			}
		})
	}
}

func TestAdvertised(t *testing.T) {
	for _, tc := range []struct {
		bound, host string
		override    bool
		want        string
	}{
		{"0.0.0.0:8001", "127.0.0.1", false, "127.0.0.1:8001"},
		{"[::]:8001", "10.0.0.7", false, "10.0.0.7:8001"},
		{":8001", "10.0.0.7", false, "10.0.0.7:8001"},
		{"[::]:8001", "fd00::1", false, "[fd00::1]:8001"},
		{"127.0.0.1:8001", "10.0.0.7", false, "127.0.0.1:8001"}, // a concrete host stays
		{"127.0.0.1:8001", "192.0.2.1", true, "192.0.2.1:8001"}, // listen.advertise replaces it
	} {
		if got := advertised(tc.bound, tc.host, tc.override); got != tc.want {
			t.Errorf("advertised(%q, %q, %v) = %q, want %q", tc.bound, tc.host, tc.override, got, tc.want)
		}
	}
}

// TestWildcardHTTPAdvertisesReachableAddress: a node whose HTTP and RESP
// listen on every interface advertises them at its gossip host with the
// bound port, in its own members row and in a peer's, and the advertised
// HTTP address answers as that node. Before, the rows said 0.0.0.0, which a
// peer on another machine dials as itself: the ring inspection then credited
// the asking node's numbers to this one.
func TestWildcardHTTPAdvertisesReachableAddress(t *testing.T) {
	c1 := testConfig(t, "n1")
	c1.Listen.HTTP, c1.Listen.RESP = "0.0.0.0:0", "0.0.0.0:0"
	n1 := startNode(t, c1)
	n2 := startNode(t, testConfig(t, "n2", n1.Addrs().Gossip))
	testkit.Eventually(t, 20*time.Second, "a 2-node ring on both nodes", func() bool {
		return n1.ring.Load().Len() == 2 && n2.ring.Load().Len() == 2 &&
			n1.liveMembers() == 2 && n2.liveMembers() == 2 && n2.Ready()
	})

	_, httpPort, _ := net.SplitHostPort(n1.Addrs().HTTP)
	_, respPort, _ := net.SplitHostPort(n1.Addrs().RESP)
	wantHTTP, wantRESP := net.JoinHostPort("127.0.0.1", httpPort), net.JoinHostPort("127.0.0.1", respPort)
	// n1 is asked on loopback: its bound address names no host to dial.
	for asker, url := range map[string]string{"n1": "http://" + wantHTTP, "n2": httpURL(n2, "")} {
		var ms []client.Member
		getJSON(t, url+"/v1/members", &ms)
		if len(ms) != 2 || ms[0].Name != "n1" {
			t.Fatalf("members seen by %s: %+v", asker, ms)
		}
		if ms[0].HTTP != wantHTTP || ms[0].RESP != wantRESP {
			t.Fatalf("%s lists n1 at http %q resp %q, want %q and %q", asker, ms[0].HTTP, ms[0].RESP, wantHTTP, wantRESP)
		}
	}
	var st client.NodeStats
	getJSON(t, "http://"+wantHTTP+"/v1/stats", &st)
	if st.Node != "n1" {
		t.Fatalf("advertised HTTP address answered as %q", st.Node)
	}
}
