package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

// Profiles select memberlist timers.
const (
	// ProfileLAN uses memberlist.DefaultLANConfig: production timers.
	ProfileLAN = "lan"
	// ProfileLocal uses short timers so that failures are detected in about
	// a second on loopback; for tests and the dev cluster only.
	ProfileLocal = "local"
)

// Config configures one node's gossip. Build it from DefaultConfig.
type Config struct {
	// Name is the node's stable ID: its memberlist name and its ring member
	// name. Required; at most 128 bytes, no '/' or control characters.
	Name string
	// BindAddr is the IP address memberlist listens on (TCP and UDP). It may
	// also be "host:port", in which case BindPort must be 0 or equal. When
	// it is one specific IP (not 0.0.0.0 or ::), the streams this node
	// dials leave from it too, as its packets do. Default "127.0.0.1".
	BindAddr string
	// Zone is the failure domain the node declares (ring.ValidZone; ""
	// for none). It travels in the node's ring-map row, and the plan that
	// takes the node in fixes it (ring.Plan.Zones): New refuses to start
	// a node whose persisted plan gives it another zone. Default "".
	Zone string
	// BindPort is the gossip port; 0 picks a free port (tests). Default 0.
	BindPort int
	// AdvertiseAddr is the IP other nodes should use to reach this one;
	// empty means the bound address. Default empty.
	AdvertiseAddr string
	// AdvertisePort is the advertised port; 0 means the bound port.
	AdvertisePort int
	// Seeds are host:port gossip addresses of other nodes, joined at Start.
	// An empty list starts a new cluster. Default empty.
	Seeds []string
	// Meta is advertised to every other node. Its msgpack encoding must fit
	// in memberlist's 512 bytes.
	Meta Meta
	// Dir is the node's data directory, where the ring-membership map is
	// persisted (file ring-membership.json). Required; must exist.
	Dir string
	// FS is the filesystem that file is read and written through, so that
	// a whole node can run on one injected filesystem (vfstest.CrashFS).
	// Default nil: the operating system's (vfs.OSFS, file mode 0600).
	FS vfs.FS
	// Keys enables gossip encryption (AES-GCM, memberlist's keyring) and
	// message verification when non-empty: the first key encrypts what
	// this node sends (the primary), every key is tried on what it
	// receives, so a cluster can rotate keys without a restart (see
	// SetKeys and docs/gossip.md). Each is 16, 24 or 32 bytes, no two
	// equal, at most MaxKeys. Nodes that share no key never join each
	// other. Default nil (no encryption).
	Keys [][]byte
	// SecretKey is a single key, the form from before Keys; it is the
	// same as Keys with one element. At most one of the two may be set.
	SecretKey []byte
	// Profile is ProfileLAN (default) or ProfileLocal.
	Profile string
	// RejoinInterval is how often the node re-joins known ring members that
	// memberlist does not see alive, so a partition longer than memberlist's
	// GossipToTheDeadTime still heals. 0 means the profile default (30 s for
	// lan, 1 s for local).
	RejoinInterval time.Duration
	// Logger receives gossip and memberlist logs; nil discards them.
	Logger *slog.Logger
	// Transport, when non-nil, carries memberlist's packets and streams
	// instead of sockets bound to BindAddr:BindPort (which are then unused):
	// tests use gossiptest's in-memory network. The node advertises the
	// address the transport reports. Default nil (UDP and TCP sockets).
	Transport memberlist.NodeAwareTransport
	// MaxStreamBytes caps the bytes memberlist reads from one TCP stream
	// (a push-pull, a ping, a reliable message), accepted or dialled: at
	// the first byte beyond it the stream is closed, counted in
	// Stats.RefusedStreams and logged. It applies to the default sockets
	// and to an injected Transport alike. 0 means DefaultMaxStreamBytes
	// (2 MiB); see docs/gossip.md for how it was sized.
	MaxStreamBytes int64
	// MaxConcurrentStreams bounds the TCP streams peers may have open to
	// this node at once (dialled streams do not count). A stream accepted
	// beyond it is closed at once, counted in Stats.BusyStreams and logged;
	// memberlist retries a push-pull on its next interval and a join on
	// the next rejoin. It bounds what memberlist may allocate per stream
	// (up to 40 MiB decompressing, 20 MiB for a reliable message) times
	// the streams a peer can hold open. 0 means DefaultMaxConcurrentStreams
	// (16); see docs/gossip.md for how it was sized.
	MaxConcurrentStreams int
	// Now is the wall clock ring-row versions are derived from and checked
	// against (see docs/gossip.md); nil means time.Now.
	Now func() time.Time
	// OnRingChange is called with the whole, sorted list of ring members
	// each time it changes, and once soon after New with the loaded list.
	// Calls are serial, from one goroutine, never under memberlist's locks;
	// the callee owns the slice. It should not block for long: liveness
	// events queue behind it. Optional.
	OnRingChange func(members []string)
	// OnLiveness is called when memberlist's view of another node changes
	// (alive, suspect, dead), on the same goroutine as OnRingChange, in the
	// order the changes were seen. Optional.
	OnLiveness func(name string, l Liveness)
	// OnPlanChange is called with the cluster plan each time it changes,
	// by Propose or from a peer, and once soon after New with the plan the
	// node starts with (the zero Plan if none is known). Calls are
	// coalesced (always the plan held at the time of the call, so a
	// quick succession of plans may be reported once), serial, on the
	// same goroutine as OnRingChange, never under memberlist's locks. The
	// plan's slices are shared: do not modify them. Optional.
	OnPlanChange func(p ring.Plan)
	// Bootstrap lets a node that knows no plan and has never seen a peer
	// (its persisted map holds no other node) start a new cluster: New
	// makes the first plan, with this node alone. Without it such a node
	// waits for a peer's plan. The node package sets it for a node started
	// without seeds or with --bootstrap. Default false.
	Bootstrap bool
}

// DefaultConfig returns a Config with every default filled in; Name and Dir
// must still be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:             "127.0.0.1",
		Profile:              ProfileLAN,
		MaxStreamBytes:       DefaultMaxStreamBytes,
		MaxConcurrentStreams: DefaultMaxConcurrentStreams,
	}
}

// LocalConfig returns DefaultConfig with the fast local profile.
func LocalConfig() Config {
	c := DefaultConfig()
	c.Profile = ProfileLocal
	return c
}

// Validate checks every field and the rules between them.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	if err := validName(c.Name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrBadConfig, err)
	}
	if c.Dir == "" {
		return bad("dir is required (the node data directory)")
	}
	if err := ring.ValidZone(c.Zone); err != nil {
		return fmt.Errorf("%w: zone: %w", ErrBadConfig, err)
	}
	if _, _, err := c.bind(); err != nil {
		return err
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("advertise address %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("advertise port %d out of range", c.AdvertisePort)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad("seed %q is not host:port: %v", s, err)
		}
	}
	if _, err := EncodeMeta(c.Meta); err != nil {
		return fmt.Errorf("%w: meta: %w", ErrBadConfig, err)
	}
	if len(c.SecretKey) > 0 && len(c.Keys) > 0 {
		return bad("both a secret key and keys are set; use keys alone")
	}
	if err := validKeys(c.keys()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	switch c.Profile {
	case ProfileLAN, ProfileLocal:
	default:
		return bad("profile %q: must be %q or %q", c.Profile, ProfileLAN, ProfileLocal)
	}
	if c.MaxStreamBytes < 0 {
		return bad("max stream bytes %d is negative", c.MaxStreamBytes)
	}
	if c.MaxConcurrentStreams < 0 {
		return bad("max concurrent streams %d is negative", c.MaxConcurrentStreams)
	}
	if c.RejoinInterval < 0 {
		return bad("rejoin interval %v is negative", c.RejoinInterval)
	}
	return nil
}

// keys returns the keyring's keys, primary first: Keys, or SecretKey alone.
func (c Config) keys() [][]byte {
	if len(c.Keys) > 0 {
		return c.Keys
	}
	if len(c.SecretKey) > 0 {
		return [][]byte{c.SecretKey}
	}
	return nil
}

// now reads the configured clock.
func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// bind returns the host and port to bind, accepting BindAddr as "ip" or
// "ip:port".
func (c Config) bind() (string, int, error) {
	host, port := c.BindAddr, c.BindPort
	if h, p, err := net.SplitHostPort(c.BindAddr); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, fmt.Errorf("%w: bind address %q has a bad port", ErrBadConfig, c.BindAddr)
		}
		if port != 0 && port != n {
			return "", 0, fmt.Errorf("%w: bind address %q disagrees with bind port %d", ErrBadConfig, c.BindAddr, port)
		}
		host, port = h, n
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%w: bind address %q is not an IP address", ErrBadConfig, c.BindAddr)
	}
	if port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: bind port %d out of range", ErrBadConfig, port)
	}
	return host, port, nil
}

// maxStreamBytes returns the effective stream cap.
func (c Config) maxStreamBytes() int64 {
	if c.MaxStreamBytes > 0 {
		return c.MaxStreamBytes
	}
	return DefaultMaxStreamBytes
}

// maxConcurrentStreams returns the effective bound on open incoming streams.
func (c Config) maxConcurrentStreams() int {
	if c.MaxConcurrentStreams > 0 {
		return c.MaxConcurrentStreams
	}
	return DefaultMaxConcurrentStreams
}

// rejoinInterval returns the effective re-join period.
func (c Config) rejoinInterval() time.Duration {
	if c.RejoinInterval > 0 {
		return c.RejoinInterval
	}
	if c.Profile == ProfileLocal {
		return time.Second
	}
	return 30 * time.Second
}

// memberlistConfig derives memberlist's config from the profile. The
// delegates and the transport (always a cappedTransport) are filled in by
// New.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	var mc *memberlist.Config
	if c.Profile == ProfileLocal {
		mc = memberlist.DefaultLocalConfig()
		// Faster than memberlist's own local profile: on loopback a probe
		// answers in microseconds, and tests want a dead node noticed in
		// one to three seconds.
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = 2 * time.Second
		mc.GossipToTheDeadTime = 5 * time.Second
		mc.TCPTimeout = 2 * time.Second
		mc.DeadNodeReclaimTime = time.Second
	} else {
		mc = memberlist.DefaultLANConfig()
		// A node restarted on another port may take its name back once
		// the old incarnation has been dead this long.
		mc.DeadNodeReclaimTime = 30 * time.Second
	}
	host, port, err := c.bind()
	if err != nil {
		return nil, err
	}
	mc.Name = c.Name
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		// memberlist uses AdvertisePort only with AdvertiseAddr; with
		// BindPort 0 the transport reports the port it actually got.
		mc.AdvertisePort = port
	}
	if keys := c.keys(); len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err != nil {
			return nil, fmt.Errorf("%w: keys: %w", ErrBadConfig, err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	return mc, nil
}

// stateFS is the filesystem of the ring-membership file.
func (c Config) stateFS() vfs.FS {
	if c.FS == nil {
		return vfs.OSFS{}
	}
	return c.FS
}
