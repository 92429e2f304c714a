package chaos

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Kind is what an operation did.
type Kind uint8

// The operations a workload client performs.
const (
	// Read is a GET of one key.
	Read Kind = iota + 1
	// Write is a PUT of a value unique to the run.
	Write
)

// String names the kind as the history file and reports spell it.
func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Outcome is what the client learned about an operation.
type Outcome uint8

// Outcomes. Only an OK write is acknowledged; a Failed write was refused
// in a way that says nothing was stored (a 4xx, or a 503 with
// unavailable: true); every other failure is Unknown: the write may have
// reached some replicas, as in Dynamo.
const (
	OK Outcome = iota + 1
	Failed
	Unknown
)

// String names the outcome as the history file and reports spell it.
func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Op is one recorded operation.
type Op struct {
	// Client numbers the workload client that issued the operation.
	Client int
	Kind   Kind
	Key    string
	// Value is the value a Write sent.
	Value string
	// Known lists, for a Write, the values the causal context it sent
	// covers as far as the client knows: the values of its last read of
	// the key (or its own last write and what that covered). A write
	// without a context has none.
	Known []string
	// Blind marks a write sent without a context: it supersedes whatever
	// its coordinator held, which Known cannot say. The workload sends
	// such writes only to seed a key before any client uses it.
	Blind bool
	// Values lists, for an OK Read, the live values returned (none: not
	// found).
	Values []string
	// Node names the node the request was sent to.
	Node string
	// Start is when the request was sent and End when its answer (or
	// error) came back.
	Start, End time.Time
	Outcome    Outcome
	// Err says why an operation was not OK.
	Err string
}

// History is the concurrent-safe record of a run's operations.
type History struct {
	mu  sync.Mutex // guards ops
	ops []Op
}

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far, in the order
// they were added.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// FaultKind names a fault the schedule injects.
type FaultKind string

// Faults.
const (
	FaultKill   FaultKind = "kill"   // SIGKILL, restarted at End on the same data
	FaultFreeze FaultKind = "freeze" // SIGSTOP, SIGCONT at End
	FaultWipe   FaultKind = "wipe"   // killed, data directory deleted, restarted at End
	FaultCut    FaultKind = "cut"    // traffic between groups dropped until End
	FaultJoin   FaultKind = "join"   // a new node joined at Start
	FaultLeave  FaultKind = "leave"  // a node asked to leave at Start
)

// FaultWindow is one fault as injected: from Start until End (zero End:
// still active when the run ended).
type FaultWindow struct {
	Kind  FaultKind `json:"kind"`
	Nodes []string  `json:"nodes"`
	// Detail says more (for a cut: "n1,n2 -/-> n3" or "n1,n2 <-/-> n3").
	Detail string    `json:"detail,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
}

// FinalRead is a key's value set read with R=all after the faults healed
// and the cluster settled.
type FinalRead struct {
	Key string
	// Values lists the live values (none: not found).
	Values []string
	// Err is set when the read failed; the key is then reported, not
	// checked.
	Err string
}
