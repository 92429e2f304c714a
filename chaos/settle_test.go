package chaos

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSettleProblems(t *testing.T) {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	after := since.Add(time.Second).Format(time.RFC3339Nano)
	want := []string{"n1", "n2"}
	members := []memberJSON{{Name: "n1", Liveness: "alive", Status: "joined"}, {Name: "n2", Liveness: "alive", Status: "joined"}}
	good := func(name string) nodeView {
		return nodeView{
			members: members,
			stats: statsJSON{
				Node:  name,
				Plan:  planJSON{Epoch: 3, Members: []string{"n2", "n1"}},
				AAE:   &aaeStatsJSON{Partitions: 2},
				Hints: &hintsJSON{},
			},
			aae: []aaePartitionJSON{{Partition: 0, LastFull: after}, {Partition: 1, LastFull: after}},
		}
	}
	tests := []struct {
		name   string
		change func(v map[string]nodeView)
		want   string // a substring of the problems; "" for none
	}{
		{"settled", func(map[string]nodeView) {}, ""},
		{"unreadable", func(v map[string]nodeView) { v["n2"] = nodeView{err: errors.New("refused")} }, "n2: refused"},
		{"missing", func(v map[string]nodeView) { delete(v, "n1") }, "n1: not read"},
		{"suspect", func(v map[string]nodeView) {
			n := good("n1")
			n.members = []memberJSON{members[0], {Name: "n2", Liveness: "suspect", Status: "joined"}}
			v["n1"] = n
		}, "n1 sees n2 suspect and joined"},
		{"unlisted", func(v map[string]nodeView) {
			n := good("n1")
			n.members = members[:1]
			v["n1"] = n
		}, "n1 does not list n2"},
		{"changing", func(v map[string]nodeView) {
			n := good("n2")
			n.stats.Plan.Target = []string{"n1", "n2", "n3"}
			v["n2"] = n
		}, "change in progress"},
		{"other members", func(v map[string]nodeView) {
			n := good("n2")
			n.stats.Plan.Members = []string{"n1"}
			v["n2"] = n
		}, "plan members [n1]"},
		{"other epoch", func(v map[string]nodeView) {
			n := good("n2")
			n.stats.Plan.Epoch = 4
			v["n2"] = n
		}, "epoch 4"},
		{"copying", func(v map[string]nodeView) {
			n := good("n1")
			n.stats.Transfer.InFlight = 2
			v["n1"] = n
		}, "2 partitions left to copy"},
		{"hints", func(v map[string]nodeView) {
			n := good("n1")
			n.stats.Hints.Pending = 7
			v["n1"] = n
		}, "n1 holds 7 hints"},
		{"aae off", func(v map[string]nodeView) {
			n := good("n1")
			n.stats.AAE = nil
			v["n1"] = n
		}, "anti-entropy is off"},
		{"aae before", func(v map[string]nodeView) {
			n := good("n2")
			n.aae[1].LastFull = since.Add(-time.Second).Format(time.RFC3339Nano)
			v["n2"] = n
		}, "n2: 1 of 2 partitions"},
		{"aae never", func(v map[string]nodeView) {
			n := good("n2")
			n.aae[0].LastFull, n.aae[0].LastError = "", "timeout"
			v["n2"] = n
		}, "last error timeout"},
		{"wrong node", func(v map[string]nodeView) { v["n1"] = good("n9") }, `answered for "n9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			views := map[string]nodeView{"n1": good("n1"), "n2": good("n2")}
			tc.change(views)
			probs := settleProblems(want, since, views)
			got := strings.Join(probs, "; ")
			switch {
			case tc.want == "" && len(probs) > 0:
				t.Errorf("problems %q, want none", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("problems %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	if firstProblem(nil) != nil {
		t.Error("firstProblem(nil) is an error")
	}
	got := summarize([]string{"a", "b", "c"}, 2)
	if got != "a; b; and 1 more" {
		t.Errorf("summarize = %q", got)
	}
}
