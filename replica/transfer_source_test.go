package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// sourceNode is one coordinator at epoch 5 of a 16-partition placement
// whose store holds perPart keys in each of partitions 3 and 4.
func sourceNode(t *testing.T, perPart int, mod func(*replica.Config)) (*replica.Coordinator, *replicatest.Store, *xferPlace) {
	t.Helper()
	place := joinPlace(5)
	st := replicatest.NewStore("inc-n1")
	st.Partitioner = place.Partition
	ctx := context.Background()
	have := map[int]int{}
	for i := 0; have[3] < perPart || have[4] < perPart; i++ {
		k := fmt.Appendf(nil, "k%06d", i)
		part := place.Partition(k)
		if (part != 3 && part != 4) || have[part] == perPart {
			continue
		}
		have[part]++
		_, set := vclock.Mint(nil, "inc-n1", vclock.Write{Value: bytes.Repeat([]byte("v"), 10)})
		if _, err := st.Apply(ctx, k, set); err != nil {
			t.Fatal(err)
		}
	}
	cfg := replica.DefaultConfig()
	cfg.Self, cfg.Store = "n1", st
	cfg.Placement = func() replica.Placement { return place }
	cfg.Transport = replica.TransportFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
		return replica.Response{}, errors.New("unused")
	})
	cfg.Partitions = testParts
	cfg.PartitionStats = func(p int) (int64, int64) { return scanStats(st, p) }
	if mod != nil {
		mod(&cfg)
	}
	co, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = co.Close() })
	return co, st, place
}

func transferReq(epoch uint64, part int32, after []byte, limit int32) replica.Request {
	return replica.Request{Kind: replica.KindTransfer, Epoch: epoch, Partition: part, After: after, Limit: limit}
}

func TestTransferRefuses(t *testing.T) {
	co, _, _ := sourceNode(t, 5, nil)
	for _, tc := range []struct {
		name string
		req  replica.Request
		want error
	}{
		{"newer epoch", transferReq(6, 3, nil, 10), replica.ErrStalePlan},
		{"negative partition", transferReq(5, -1, nil, 10), replica.ErrBadRequest},
		{"partition out of range", transferReq(5, testParts, nil, 10), replica.ErrBadRequest},
		{"negative limit", transferReq(5, 3, nil, -1), replica.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := co.Handle(t.Context(), "n4", tc.req)
			if !errors.Is(err, tc.want) {
				t.Errorf("Handle = %v, want %v", err, tc.want)
			}
		})
	}
	if s := co.Stats(); s.TransferBatchesServed != 0 || s.TransfersStale != 1 {
		t.Errorf("stats: %d batches served, %d refused as stale; want 0 and 1", s.TransferBatchesServed, s.TransfersStale)
	}
}

func TestTransferPagesInKeyOrder(t *testing.T) {
	co, st, _ := sourceNode(t, 40, nil)
	wantKeys, wantSets, _ := st.Scan(3, nil, 1000, 1<<40)
	totalKeys, totalBytes := scanStats(st, 3)
	for _, epoch := range []uint64{0, 4, 5} { // an older or unknown puller epoch is served
		var got []replica.Entry
		var after []byte
		calls := 0
		for more := true; more; calls++ {
			if calls > 100 {
				t.Fatal("paging does not end")
			}
			resp, err := co.Handle(t.Context(), "n4", transferReq(epoch, 3, after, 7))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Batch) > 7 || len(resp.Batch) == 0 {
				t.Fatalf("batch of %d entries, want 1..7", len(resp.Batch))
			}
			if resp.Keys != totalKeys || resp.Bytes != totalBytes {
				t.Errorf("totals %d keys %d bytes, want %d %d", resp.Keys, resp.Bytes, totalKeys, totalBytes)
			}
			got = append(got, resp.Batch...)
			after, more = resp.Batch[len(resp.Batch)-1].Key, resp.More
		}
		if calls != 6 {
			t.Errorf("40 keys by 7 took %d calls, want 6", calls)
		}
		if len(got) != len(wantKeys) {
			t.Fatalf("got %d entries, want %d", len(got), len(wantKeys))
		}
		for i := range got {
			if !bytes.Equal(got[i].Key, wantKeys[i]) || !got[i].Siblings.Equal(wantSets[i]) {
				t.Fatalf("entry %d: %q, want %q", i, got[i].Key, wantKeys[i])
			}
		}
	}
	s := co.Stats()
	if s.TransferBatchesServed != 18 || s.TransferKeysServed != 120 {
		t.Errorf("stats: %d batches, %d keys served; want 18, 120", s.TransferBatchesServed, s.TransferKeysServed)
	}
	if s.TransferBytesServed != uint64(3*totalBytes) {
		t.Errorf("stats: %d bytes served, want %d", s.TransferBytesServed, 3*totalBytes)
	}
}

func TestTransferBatchLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perPart  int
		limit    int32
		bytes    int64
		wantKeys int
		wantMore bool
	}{
		{"default limit", 300, 0, 0, 256, true},
		{"limit capped", 1100, 5000, 0, 1024, true},
		{"all that remains", 5, 100, 0, 5, false},
		{"bytes bound", 50, 100, 100, 0, true}, // wantKeys computed below
		{"one entry over the byte bound", 3, 100, 1, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			co, st, _ := sourceNode(t, tc.perPart, func(c *replica.Config) { c.TransferBatchBytes = tc.bytes })
			want := tc.wantKeys
			if tc.name == "bytes bound" {
				keys, _, _ := st.Scan(3, nil, 100, 100)
				want = len(keys)
				if want < 2 || want >= 50 {
					t.Fatalf("byte bound keeps %d of 50 keys; choose another bound", want)
				}
			}
			resp, err := co.Handle(t.Context(), "n4", transferReq(5, 3, nil, tc.limit))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Batch) != want || resp.More != tc.wantMore {
				t.Errorf("batch of %d, more %v; want %d, %v", len(resp.Batch), resp.More, want, tc.wantMore)
			}
			// The batch crosses the wire.
			if _, err := replica.MarshalReply(resp, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTransferUnknownPartitionWithoutCount(t *testing.T) {
	co, _, _ := sourceNode(t, 2, func(c *replica.Config) { c.Partitions = 0; c.PartitionStats = nil })
	resp, err := co.Handle(t.Context(), "n4", transferReq(5, 999, nil, 10))
	if err != nil || len(resp.Batch) != 0 || resp.More || resp.Keys != 0 {
		t.Errorf("without Partitions, a pull of an unknown partition = %+v, %v; want an empty last batch", resp, err)
	}
}

func TestStatus(t *testing.T) {
	co, _, place := sourceNode(t, 1, nil)
	resp, err := co.Handle(t.Context(), "n2", replica.Request{Kind: replica.KindStatus})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(replica.Response{Epoch: 5, PlanHash: place.PlanHash()}, resp, cmpEmpty); d != "" {
		t.Errorf("status without Progress (-want +got):\n%s", d)
	}
	co2, _, _ := sourceNode(t, 1, func(c *replica.Config) {
		c.Progress = func() (uint64, uint64, []int32) { return 9, 0xabc, []int32{1, 4} }
	})
	resp, err = co2.Handle(t.Context(), "n2", replica.Request{Kind: replica.KindStatus})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(replica.Response{Epoch: 9, PlanHash: 0xabc, Done: []int32{1, 4}}, resp); d != "" {
		t.Errorf("status with Progress (-want +got):\n%s", d)
	}
}

func TestConfigValidateTransferFields(t *testing.T) {
	for _, mod := range []func(*replica.Config){
		func(c *replica.Config) { c.Partitions = -1 },
		func(c *replica.Config) { c.TransferBatchBytes = -1 },
	} {
		cfg := replica.DefaultConfig()
		cfg.Self, cfg.Store = "n1", replicatest.NewStore("x")
		cfg.Placement = func() replica.Placement { return joinPlace(1) }
		cfg.Transport = replica.TransportFunc(nil)
		mod(&cfg)
		if _, err := replica.New(cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}
