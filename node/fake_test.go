package node

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/vclock"
)

// fakeKV is an in-memory kvBackend that follows the coordinator's contract
// with the real vclock functions: blind writes supersede what is held,
// writes with a context supersede exactly what it covers.
type fakeKV struct {
	mu    sync.Mutex // guards data, fail and calls
	data  map[string]vclock.Siblings
	fail  error // returned by every call when set
	calls int   // backend calls, to check that refused requests write nothing
	now   int64
}

func newFakeKV() *fakeKV { return &fakeKV{data: map[string]vclock.Siblings{}} }

func (f *fakeKV) Get(_ context.Context, key []byte, r string) (kvResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return kvResult{}, f.fail
	}
	if _, err := checkQuorum(r, 3); err != nil {
		return kvResult{}, fmt.Errorf("%w: %q", errBadQuorum, r)
	}
	s := f.data[string(key)]
	return kvResult{Siblings: s}, nil
}

func (f *fakeKV) write(key []byte, w vclock.Write, hasCtx bool) (kvResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return kvResult{}, f.fail
	}
	f.now++
	w.WallTime = f.now
	w.Blind = !hasCtx
	_, merged := vclock.Mint(f.data[string(key)], "fake", w)
	f.data[string(key)] = merged
	return kvResult{Siblings: merged}, nil
}

func (f *fakeKV) Put(_ context.Context, key, value []byte, _ string, c vclock.Clock, hasCtx bool) (kvResult, error) {
	return f.write(key, vclock.Write{Context: c, Value: value}, hasCtx)
}

func (f *fakeKV) Delete(_ context.Context, key []byte, _ string, c vclock.Clock, hasCtx bool) (kvResult, error) {
	return f.write(key, vclock.Write{Context: c, Tombstone: true}, hasCtx)
}

func (f *fakeKV) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeKV) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeKV) inject(key string, s vclock.Siblings) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[key] = s
}

// fakeAdmin is an adminBackend over a fixed member list.
type fakeAdmin struct {
	mu      sync.Mutex // guards members, left and rateMB
	rateMB  float64
	members map[string]client.Member
	self    string
	left    bool
}

func (f *fakeAdmin) Members() []client.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []client.Member
	for _, m := range f.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeAdmin) LocalStats() client.NodeStats {
	return client.NodeStats{Node: f.self, Keys: 5, Bytes: 50}
}

func (f *fakeAdmin) AAE() []client.AAEPartition {
	return []client.AAEPartition{{Partition: 7, Replicas: []string{f.self, "n2"}, InSync: true, KeysRepaired: 3}}
}

// Ring names the members, sorted, and nothing else.
func (f *fakeAdmin) Ring(context.Context) client.Ring {
	var out client.Ring
	for _, m := range f.Members() {
		out.Nodes = append(out.Nodes, client.RingNode{Node: m.Name})
	}
	return out
}

// Placement's partition is the key's length: tests see the key arrived.
func (f *fakeAdmin) Placement(key []byte) client.KeyPlacement {
	return client.KeyPlacement{Partition: len(key), Replicas: []string{"n1", "n2"}, Fallbacks: []string{}}
}

func (f *fakeAdmin) Partitions() client.Partitions {
	return client.Partitions{Partitions: [][]string{{"n1", "n2"}, {"n2", "n1"}}}
}

func (f *fakeAdmin) WhatIf(op, node, _ string) (client.WhatIf, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.members[node]; op == "remove" && !ok {
		return client.WhatIf{}, fmt.Errorf("%w: %s", errNotFound, node)
	}
	return client.WhatIf{Op: op, Node: node}, nil
}

func (f *fakeAdmin) Leave(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left = true
	return nil
}

func (f *fakeAdmin) SetTransferRate(mb float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateMB = mb
}

func (f *fakeAdmin) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == f.self {
		return fmt.Errorf("%w: cannot remove self", errBadRequest)
	}
	m, ok := f.members[name]
	if !ok {
		return fmt.Errorf("%w: unknown node %q", errNotFound, name)
	}
	m.Status = "removed"
	f.members[name] = m
	return nil
}

// testLimits are small so that limit tests stay cheap.
var testLimits = LimitsConfig{MaxKeyBytes: 16, MaxValueBytes: 1024}
