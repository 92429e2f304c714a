package replica

import (
	"fmt"
	"strconv"
	"strings"
)

// Quorum is a read or write quorum as a client or config spells it: a
// positive number of replicas, or one of the symbolic values below, which
// are resolved against the replication factor N at request time.
type Quorum int

const (
	// QuorumDefault means "use the coordinator's configured default".
	QuorumDefault Quorum = 0
	// QuorumOne is one replica.
	QuorumOne Quorum = -1
	// QuorumMajority is N/2+1 replicas.
	QuorumMajority Quorum = -2
	// QuorumAll is all N replicas.
	QuorumAll Quorum = -3
)

// ParseQuorum parses "", "one", "quorum", "all" (any case) or a decimal
// number >= 1; surrounding white space is ignored. The upper bound N is
// checked at request time, because the parser does not know the
// replication factor. Bad input yields an error wrapping ErrBadQuorum.
func ParseQuorum(s string) (Quorum, error) {
	w := strings.TrimSpace(s)
	switch strings.ToLower(w) {
	case "":
		return QuorumDefault, nil
	case "one":
		return QuorumOne, nil
	case "quorum":
		return QuorumMajority, nil
	case "all":
		return QuorumAll, nil
	}
	k, err := strconv.Atoi(w)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not one, quorum, all or a number", ErrBadQuorum, s)
	}
	if k < 1 {
		return 0, fmt.Errorf("%w: %d is below 1", ErrBadQuorum, k)
	}
	return Quorum(k), nil
}

// String returns the spelling ParseQuorum accepts.
func (q Quorum) String() string {
	switch q {
	case QuorumDefault:
		return ""
	case QuorumOne:
		return "one"
	case QuorumMajority:
		return "quorum"
	case QuorumAll:
		return "all"
	}
	return strconv.Itoa(int(q))
}

// Resolve returns the number of replicas q stands for when the replication
// factor is n. QuorumDefault is not resolvable (the caller substitutes its
// default first); a number outside 1..n is an error wrapping ErrBadQuorum.
func (q Quorum) Resolve(n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("%w: replication factor %d", ErrBadQuorum, n)
	}
	switch q {
	case QuorumOne:
		return 1, nil
	case QuorumMajority:
		return n/2 + 1, nil
	case QuorumAll:
		return n, nil
	case QuorumDefault:
		return 0, fmt.Errorf("%w: default quorum was not substituted", ErrBadQuorum)
	}
	if q < 1 || int(q) > n {
		return 0, fmt.Errorf("%w: %d is outside 1..%d (N)", ErrBadQuorum, int(q), n)
	}
	return int(q), nil
}

// need is how many answers a request waits for: the quorum resolved
// against N, capped by the replicas that exist, because a cluster smaller
// than N serves with fewer replicas.
func need(q, def Quorum, n, replicas int) (int, error) {
	if q == QuorumDefault {
		q = def
	}
	k, err := q.Resolve(n)
	if err != nil {
		return 0, err
	}
	return min(k, replicas), nil
}
