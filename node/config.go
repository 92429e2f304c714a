package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// Config is everything one ringkv process needs. Its mapstructure tags are
// the YAML keys of configs/*.yaml and, upper-cased with "." -> "_" and a
// RINGKV_ prefix, the environment variables (RINGKV_LISTEN_HTTP). cmd/ringkv
// loads it with viper; configs/production.yaml documents every key.
type Config struct {
	Node   NodeConfig   `mapstructure:"node"`
	Listen ListenConfig `mapstructure:"listen"`
	Seeds  []string     `mapstructure:"seeds"`
	// Bootstrap lets a node with seeds serve clients before it has reached
	// any of them: it starts a new cluster if none answers. A node without
	// seeds (or whose only seed is its own gossip address) always does.
	// Only while its persisted plan has no other member or target (with no
	// plan, while its ring map names no other node): one that restarts
	// into a cluster of several waits to reach a seed, as any node with
	// seeds does. Default false: a node with seeds answers 503 until it has joined.
	Bootstrap bool          `mapstructure:"bootstrap"`
	Cluster   ClusterConfig `mapstructure:"cluster"`
	Quorum    QuorumConfig  `mapstructure:"quorum"`
	Storage   StorageConfig `mapstructure:"storage"`
	Gossip    GossipConfig  `mapstructure:"gossip"`
	Hints     HintsConfig   `mapstructure:"hints"`
	Limits    LimitsConfig  `mapstructure:"limits"`
	// Transfer paces the partition transfers of membership changes.
	Transfer TransferConfig `mapstructure:"transfer"`
	AAE      AAEConfig      `mapstructure:"aae"`
	Log      LogConfig      `mapstructure:"log"`
	Debug    DebugConfig    `mapstructure:"debug"`
	// TLS secures the HTTP, RESP and internal RPC ports (tls.go).
	TLS TLSConfig `mapstructure:"tls"`
	// Auth lists the tokens clients and operators present (auth.go).
	Auth AuthConfig `mapstructure:"auth"`
	// Security holds protected mode.
	Security SecurityConfig `mapstructure:"security"`
}

// NodeConfig names the node and its data.
type NodeConfig struct {
	// Name is the node's stable ID: its gossip name and ring member name.
	// Default "n1".
	Name string `mapstructure:"name"`
	// Zone is the failure domain the node is in (a rack, a data centre, a
	// cloud availability zone): each partition's replicas are spread over
	// as many zones as the ring has. At most 64 bytes, no spaces or
	// slashes; fixed while the node is in the ring. Default "" (none).
	Zone string `mapstructure:"zone"`
	// DataDir holds the WAL, snapshots, hints, the ring membership and the
	// node's identity. Default "./ringkv-data/<name>".
	DataDir string `mapstructure:"data_dir"`
}

// ListenConfig holds host:port listen addresses. Port 0 picks a free port.
type ListenConfig struct {
	// HTTP is the client and admin API. Default 127.0.0.1:8001.
	HTTP string `mapstructure:"http"`
	// RESP is the Redis-protocol port. Default 127.0.0.1:6380.
	RESP string `mapstructure:"resp"`
	// RPC is the internal node-to-node RPC port. Default 127.0.0.1:7001.
	RPC string `mapstructure:"rpc"`
	// Gossip is the memberlist port (TCP and UDP). Default 127.0.0.1:9001.
	Gossip string `mapstructure:"gossip"`
	// Admin, if set, is a second HTTP listener for operators: it serves
	// /metrics, /v1/members, /v1/ring, /v1/stats, /v1/aae, the routes
	// that change the cluster and /debug/pprof/, and listen.http then
	// serves only /v1/kv/, /healthz and /readyz. /metrics needs no token
	// there. Default empty: listen.http serves everything.
	Admin string `mapstructure:"admin"`
	// Advertise, if set, is the IP other nodes and the cluster's members
	// list use to reach this one: it replaces the host of every listen
	// address in what gossip advertises (to cross NAT, or for 0.0.0.0).
	// Default empty: each listen host is advertised as is, except that a
	// wildcard host (0.0.0.0, ::, empty) in HTTP or RESP is replaced by the
	// gossip host, or when gossip is on a wildcard too by the private IP
	// memberlist picks. Validate still refuses a wildcard RPC host without
	// Advertise, so that peers dial an address the operator chose.
	Advertise string `mapstructure:"advertise"`
}

// ClusterConfig is fixed at cluster creation: every node must agree.
type ClusterConfig struct {
	// Partitions is the number of ring partitions, a prime (ring.DefaultConfig: 2039, tuned in docs/ring.md). Default 2039.
	Partitions int `mapstructure:"partitions"`
	// Replication is N, the number of replicas of each key. Default 3.
	Replication int `mapstructure:"replication"`
}

// QuorumConfig holds request defaults; clients override them per request.
type QuorumConfig struct {
	// R is the default read quorum: one, quorum, all or a number. Default quorum.
	R string `mapstructure:"r"`
	// W is the default write quorum. Default quorum.
	W string `mapstructure:"w"`
	// Timeout is the per-request deadline. Default 2s.
	Timeout time.Duration `mapstructure:"timeout"`
	// Sloppy lets acknowledgements from fallback nodes holding hints count
	// toward W while replicas are down. Default true.
	Sloppy bool `mapstructure:"sloppy"`
	// ReadHedge is how long a read waits for the replicas it asks first
	// (the local one and as many others as R needs) before it asks the
	// rest too (speculative retry); 0 asks every replica at once.
	// Default replica.DefaultReadHedge (5ms).
	ReadHedge time.Duration `mapstructure:"read_hedge"`
}

// StorageConfig tunes the storage engine.
type StorageConfig struct {
	// Fsync is the WAL policy: always, interval or none. Default always.
	Fsync string `mapstructure:"fsync"`
	// FsyncInterval is the fsync period for the interval policy. Default 10ms.
	FsyncInterval time.Duration `mapstructure:"fsync_interval"`
	// SegmentBytes is the WAL segment size: at least 4096
	// (storage.MinSegmentBytes); below 1 MiB a warning is logged at start,
	// as most values then get a segment file (and a directory fsync) of
	// their own. Default 64 MiB.
	SegmentBytes int64 `mapstructure:"segment_bytes"`
	// SnapshotBytes is the WAL growth that triggers a snapshot: at least
	// SegmentBytes, or negative to turn automatic snapshots off (the WAL
	// then grows without bound and a restart replays all of it; a warning
	// is logged at start; for benchmarks and tests). Default 256 MiB.
	SnapshotBytes int64 `mapstructure:"snapshot_bytes"`
	// TombstoneGC is how long tombstones are kept. Default 240h (10 days).
	TombstoneGC time.Duration `mapstructure:"tombstone_gc"`
	// FileMode is the octal permission, as a string, of every file the
	// node writes in its data directory (WAL, snapshots, identity, hints,
	// gossip and transfer state); directories get search permission
	// wherever this allows reading. Anything more open already there is
	// tightened at start, with a warning. Default "0600" (directories 0700).
	FileMode string `mapstructure:"file_mode"`
}

// GossipConfig tunes membership and failure detection.
type GossipConfig struct {
	// Profile is "lan" (memberlist's LAN defaults) or "local" (fast timers
	// for tests and the dev cluster). Default lan.
	Profile string `mapstructure:"profile"`
	// Keys are base64 AES keys (16, 24 or 32 bytes decoded) that encrypt
	// and authenticate gossip: the first encrypts what this node sends,
	// every one decrypts what it receives, so keys can be rotated while
	// running (SIGHUP or PUT /v1/gossip/keys; docs/gossip.md). At most 8.
	// Empty, with secret_key empty, disables encryption. Default empty.
	Keys []string `mapstructure:"keys"`
	// SecretKey is a single base64 AES key, the same as keys with one
	// element; set one of the two. Default empty.
	SecretKey string `mapstructure:"secret_key"`
}

// keys decodes gossip.keys (or gossip.secret_key), primary first.
func (g GossipConfig) keys() ([][]byte, error) {
	list := g.Keys
	if g.SecretKey != "" {
		if len(g.Keys) > 0 {
			return nil, errors.New("set gossip.keys or gossip.secret_key, not both")
		}
		list = []string{g.SecretKey}
	}
	return decodeGossipKeys(list)
}

// keysName is the config key the gossip keys came from, for errors.
func (g GossipConfig) keysName() string {
	if g.SecretKey != "" && len(g.Keys) == 0 {
		return "gossip.secret_key"
	}
	return "gossip.keys"
}

// decodeGossipKeys decodes base64 keys and checks them as gossip would.
func decodeGossipKeys(list []string) ([][]byte, error) {
	if len(list) > gossip.MaxKeys {
		return nil, fmt.Errorf("%d keys, at most %d", len(list), gossip.MaxKeys)
	}
	keys := make([][]byte, 0, len(list))
	for i, k := range list {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64: %w", i+1, err)
		}
		keys = append(keys, b)
	}
	cfg := gossip.Config{Keys: keys}
	if err := cfg.ValidateKeys(); err != nil {
		return nil, err
	}
	return keys, nil
}

// HintsConfig bounds hinted handoff.
type HintsConfig struct {
	// Window is how long a target may be down and still get hints. Default 3h.
	Window time.Duration `mapstructure:"window"`
	// MaxBytesPerTarget caps the hint log kept for one target. Default 1 GiB.
	MaxBytesPerTarget int64 `mapstructure:"max_bytes_per_target"`
	// DeliveryRate caps hint delivery to one target, in hints per second.
	// Default 5000.
	DeliveryRate int `mapstructure:"delivery_rate"`
	// RetryInterval is how often pending hints are retried. Default 10s.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
}

// LimitsConfig bounds client input.
type LimitsConfig struct {
	// MaxKeyBytes is the largest key accepted. Default 1024.
	MaxKeyBytes int `mapstructure:"max_key_bytes"`
	// MaxValueBytes is the largest value accepted. Default 1 MiB.
	MaxValueBytes int `mapstructure:"max_value_bytes"`
	// MaxSiblings is the most versions (siblings and tombstones) a client
	// write may leave a key with; a write that would add one more is
	// refused (HTTP 409). At most vclock.MaxSiblings (1000), the bound
	// every decoder of a sibling set applies; 0 turns this cap off, but
	// that bound still holds for what peers and hints carry. A warning is
	// logged above a quarter of it. Default 100, as Riak's max_siblings.
	MaxSiblings int `mapstructure:"max_siblings"`
	// RESPMaxClients is the most RESP connections served at once; one
	// more is answered "-ERR max number of clients reached" and closed, as
	// redis-server answers past its maxclients. 0 removes the cap. A node
	// lowers it to the open-file limit minus respReservedFiles when that
	// is less, as Redis lowers maxclients. Default 10000, as Redis.
	RESPMaxClients int `mapstructure:"resp_max_clients"`
	// RESPIdleTimeout closes a RESP connection on which no whole command
	// arrives for this long after the previous answer (or after it
	// connected and finished its TLS handshake), like redis-server's
	// timeout but stricter: Redis counts from the last byte received, so a
	// command trickled in byte by byte never times out there. Whole
	// seconds; 0 keeps idle connections open. Default 0, as Redis.
	RESPIdleTimeout time.Duration `mapstructure:"resp_idle_timeout"`
}

// TransferConfig paces the copying of partitions to new replicas when the
// membership changes.
type TransferConfig struct {
	// RateMB caps the bytes this node receives in transfers, in MB/s
	// (10^6 bytes); 0 removes the cap. Changeable at run time with
	// PUT /v1/transfer/rate.
	RateMB float64 `mapstructure:"rate_mb"`
	// MaxInFlight is how many partitions this node pulls at once.
	MaxInFlight int `mapstructure:"max_in_flight"`
}

// AAEConfig paces active anti-entropy: replicas of a partition compare
// hash trees of its keys and exchange what differs.
type AAEConfig struct {
	// Interval is how long one pass over this node's partitions takes: each
	// partition is compared with each of its other replicas once per
	// interval. 0 turns anti-entropy off. Default 2m: with 2,039 partitions
	// and three replicas each that is about 34 exchanges a second per node,
	// about 1% of a core when everything is in sync.
	Interval time.Duration `mapstructure:"interval"`
	// RateMB caps the bytes of sibling sets anti-entropy repairs per
	// second, in MB/s (10^6 bytes). Default 8.
	RateMB float64 `mapstructure:"rate_mb"`
}

// LogConfig selects the log output.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `mapstructure:"level"`
	// Format is text or json. Default text.
	Format string `mapstructure:"format"`
}

// DebugConfig switches on what an operator needs to see inside a running
// node, off by default because it exposes internals on the HTTP port.
type DebugConfig struct {
	// Pprof serves Go's profiler under /debug/pprof/ on listen.http.
	Pprof bool `mapstructure:"pprof"`
}

// TLSConfig names the PEM files of the node's certificate and of the
// cluster CA, as "ringkv certs" writes them. All three set: HTTP and RESP
// serve TLS, and the internal RPC runs mutual TLS in which each end's
// certificate must name the node it claims to be. All empty (the default):
// every port is plaintext. The files are read again on SIGHUP and when
// they change.
type TLSConfig struct {
	// CertFile is this node's certificate, signed by the CA, whose DNS
	// names include node.name.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the certificate's private key.
	KeyFile string `mapstructure:"key_file"`
	// CAFile is the cluster CA's certificate: peers' and clients'
	// certificates must chain to it.
	CAFile string `mapstructure:"ca_file"`
}

// Enabled reports whether TLS is configured.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

// DefaultConfig returns a complete single-node configuration. Every
// setting a package owns takes that package's default (config_map.go maps
// them back); the rest are the node's own.
func DefaultConfig() Config {
	sd, hd, rd := storage.DefaultConfig(), hints.DefaultConfig(), replica.DefaultConfig()
	return Config{
		Node: NodeConfig{Name: "n1"},
		Listen: ListenConfig{
			HTTP:   "127.0.0.1:8001",
			RESP:   "127.0.0.1:6380",
			RPC:    "127.0.0.1:7001",
			Gossip: "127.0.0.1:9001",
		},
		Cluster: ClusterConfig{Partitions: ring.DefaultConfig().Partitions, Replication: rd.N},
		Quorum: QuorumConfig{R: rd.DefaultR.String(), W: rd.DefaultW.String(), Timeout: rd.Timeout,
			Sloppy: rd.Sloppy, ReadHedge: rd.ReadHedge},
		Storage: StorageConfig{
			Fsync:         string(sd.Fsync),
			FsyncInterval: sd.FsyncInterval,
			SegmentBytes:  sd.SegmentBytes,
			SnapshotBytes: sd.SnapshotBytes,
			TombstoneGC:   sd.TombstoneGC,
			FileMode:      fmt.Sprintf("%04o", storage.DefaultFileMode),
		},
		Gossip: GossipConfig{Profile: gossip.ProfileLAN},
		Hints: HintsConfig{
			Window:            hd.Window,
			MaxBytesPerTarget: hd.MaxBytesPerTarget,
			DeliveryRate:      hd.DeliveryRate,
			RetryInterval:     hd.RetryInterval,
		},
		Limits: LimitsConfig{MaxKeyBytes: sd.MaxKeyBytes, MaxValueBytes: sd.MaxValueBytes, MaxSiblings: rd.MaxSiblings,
			RESPMaxClients: 10000},
		// A server's own pacing, not the packages' (which suit tests and
		// embedding): transfers at 32 MB/s, anti-entropy over two minutes
		// at 8 MB/s (docs/anti-entropy.md).
		Transfer: TransferConfig{RateMB: 32, MaxInFlight: replica.DefaultPullerConfig().MaxInFlight},
		AAE:      AAEConfig{Interval: 2 * time.Minute, RateMB: 8},
		Log:      LogConfig{Level: "info", Format: "text"},
		Security: SecurityConfig{ProtectedMode: true},
	}
}

// RingConfig returns the ring parameters: the tuned defaults of package
// ring with the cluster's partition count and replication factor.
func (c Config) RingConfig() ring.Config {
	rc := ring.DefaultConfig()
	rc.Partitions = c.Cluster.Partitions
	rc.ReplicationFactor = c.Cluster.Replication
	return rc
}

// DataDir returns the configured data directory or its default.
func (c Config) DataDir() string {
	if c.Node.DataDir != "" {
		return c.Node.DataDir
	}
	return "./ringkv-data/" + c.Node.Name
}

// Validate checks ranges and the rules between fields; the error names the
// offending key as it is spelled in YAML. What a package owns is checked by
// that package's Validate on the mapped configuration (config_map.go); the
// node checks its own settings, the spellings it parses and the rules
// between packages.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config %s: "+format, append([]any{key}, a...)...))
	}
	c.validateNetwork(bad, &errs)
	c.validateReplication(bad)
	c.validateStorage(bad)
	c.validateServices(bad)
	c.validateRESP(bad)
	return errors.Join(errs...)
}

// badFunc records a config error under a YAML key.
type badFunc func(key, format string, a ...any)

// validateNetwork checks node.name, the listen addresses, seeds and the
// inline auth tokens (the tokens file is read by New).
func (c Config) validateNetwork(bad badFunc, errs *[]error) {
	if c.Node.Name == "" || strings.ContainsAny(c.Node.Name, " \t\n/\\") {
		bad("node.name", "must be non-empty without spaces or slashes, got %q", c.Node.Name)
	}
	if err := ring.ValidZone(c.Node.Zone); err != nil {
		bad("node.zone", "must be at most %d bytes without spaces or slashes, got %q", ring.MaxZoneBytes, c.Node.Zone)
	}
	for key, addr := range map[string]string{
		"listen.http": c.Listen.HTTP, "listen.resp": c.Listen.RESP,
		"listen.rpc": c.Listen.RPC, "listen.gossip": c.Listen.Gossip,
	} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port, got %q", addr)
		}
	}
	// Peers dial the RPC address this node advertises. A wildcard host
	// would send each of them to itself, where its own store would answer
	// for this node: acknowledged writes with fewer copies than W says.
	if host, _, err := net.SplitHostPort(c.Listen.RPC); err == nil && c.Listen.Advertise == "" {
		if isWildcard(host) {
			bad("listen.rpc", "%q listens on every interface, which peers cannot dial: set listen.advertise to the address they reach this node at", c.Listen.RPC)
		}
	}
	if c.Listen.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Listen.Admin); err != nil {
			bad("listen.admin", "must be host:port or empty, got %q", c.Listen.Admin)
		}
	}
	c.Listen.checkLoopback(bad)
	if _, err := newAuthenticator(AuthConfig{Tokens: c.Auth.Tokens}); err != nil && !errors.Is(err, errNoTokens) {
		*errs = append(*errs, err)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			bad("seeds", "each seed must be host:port, got %q", s)
		}
	}
	if c.TLS.Enabled() && (c.TLS.CertFile == "" || c.TLS.KeyFile == "" || c.TLS.CAFile == "") {
		bad("tls", "cert_file, key_file and ca_file must be set together (or none of them for plaintext)")
	}
}

// validateReplication checks the ring and the quorum defaults against it.
func (c Config) validateReplication(bad badFunc) {
	if err := c.RingConfig().Validate(); err != nil {
		bad("cluster", "%v", err)
	}
	// replica.Config.Validate also wants the pieces a coordinator is wired
	// to, which exist only in New: its ranges are checked here.
	for key, q := range map[string]string{"quorum.r": c.Quorum.R, "quorum.w": c.Quorum.W} {
		// Empty would mean "the configured default", which this is.
		if strings.TrimSpace(q) == "" {
			bad(key, "must be one, quorum, all or a number, got %q", q)
		} else if _, err := checkQuorum(q, c.Cluster.Replication); err != nil {
			bad(key, "%v", err)
		}
	}
	if c.Quorum.Timeout <= 0 {
		bad("quorum.timeout", "must be positive, got %s", c.Quorum.Timeout)
	}
	if c.Quorum.ReadHedge < 0 {
		bad("quorum.read_hedge", "must not be negative, got %s", c.Quorum.ReadHedge)
	}
	if c.Limits.MaxKeyBytes < 1 || c.Limits.MaxValueBytes < 0 {
		bad("limits", "max_key_bytes must be >= 1 and max_value_bytes >= 0")
	}
}

// validateRESP checks the RESP connection limits. The idle timeout is in
// whole seconds, as Redis's timeout (CONFIG GET timeout answers it so): a
// fraction would read as another value there, and a timeout of
// nanoseconds would close every connection.
func (c Config) validateRESP(bad badFunc) {
	if c.Limits.RESPMaxClients < 0 {
		bad("limits.resp_max_clients", "must not be negative (0 removes the cap), got %d", c.Limits.RESPMaxClients)
	}
	if t := c.Limits.RESPIdleTimeout; t < 0 || t%time.Second != 0 {
		bad("limits.resp_idle_timeout", "must be 0 (keep idle connections) or whole seconds, got %s", t)
	}
}

// validateStorage parses the storage spellings, has the storage engine
// check its configuration and checks the snapshot size against segments.
func (c Config) validateStorage(bad badFunc) {
	switch storage.FsyncPolicy(c.Storage.Fsync) {
	case storage.FsyncAlways, storage.FsyncInterval, storage.FsyncNone:
	default:
		bad("storage.fsync", "must be always, interval or none, got %q", c.Storage.Fsync)
		return
	}
	if c.Storage.Fsync == string(storage.FsyncInterval) && c.Storage.FsyncInterval <= 0 {
		bad("storage.fsync_interval", "must be positive with fsync: interval, got %s", c.Storage.FsyncInterval)
	}
	if _, err := c.Storage.fileMode(); err != nil {
		bad("storage.file_mode", "%v", err)
		return
	}
	if c.Storage.SegmentBytes < storage.MinSegmentBytes {
		bad("storage.segment_bytes", "must be at least %d (the storage engine's minimum), got %d", storage.MinSegmentBytes, c.Storage.SegmentBytes)
	}
	if c.Storage.TombstoneGC <= 0 {
		bad("storage.tombstone_gc", "must be positive, got %s", c.Storage.TombstoneGC)
	}
	if c.Storage.SnapshotBytes >= 0 && c.Storage.SnapshotBytes < c.Storage.SegmentBytes {
		bad("storage.snapshot_bytes", "must be at least storage.segment_bytes (%d), or negative to turn snapshots off, got %d", c.Storage.SegmentBytes, c.Storage.SnapshotBytes)
	}
	sc := c.storageConfig()
	sc.Partitions = max(sc.Partitions, 1) // the ring's count is checked as cluster
	sc.Partitioner = func([]byte) int { return 0 }
	// A backstop: the checks above name the keys of what the engine
	// refuses today; a rule it adds later is reported here.
	if err := sc.Validate(); err != nil {
		bad("storage", "%v", err)
	}
}

// validateServices checks gossip, hints, transfers, anti-entropy and logs.
func (c Config) validateServices(bad badFunc) {
	if _, err := c.Gossip.keys(); err != nil {
		bad(c.Gossip.keysName(), "%v", err)
	}
	switch c.Gossip.Profile {
	case gossip.ProfileLAN, gossip.ProfileLocal:
	default:
		bad("gossip.profile", "must be lan or local, got %q", c.Gossip.Profile)
	}
	// Zero would silently mean the hint queue's default: refused.
	if c.Hints.Window <= 0 || c.Hints.MaxBytesPerTarget <= 0 || c.Hints.DeliveryRate <= 0 || c.Hints.RetryInterval <= 0 {
		bad("hints", "window, max_bytes_per_target, delivery_rate and retry_interval must be positive")
	} else if err := c.hintsConfig().Validate(); err != nil && c.Storage.TombstoneGC > 0 {
		bad("hints", "%v", err)
	}
	// Every decoder of a sibling set (replica messages, hint records)
	// refuses more than vclock.MaxSiblings versions, so a key allowed more
	// could be neither replicated nor hinted.
	if c.Limits.MaxSiblings < 0 || c.Limits.MaxSiblings > vclock.MaxSiblings {
		bad("limits.max_siblings", "must be between 0 (no cap below the wire bound) and the wire bound vclock.MaxSiblings = %d, got %d",
			vclock.MaxSiblings, c.Limits.MaxSiblings)
	}
	if c.Transfer.RateMB < 0 || c.Transfer.RateMB > maxTransferRateMB {
		bad("transfer.rate_mb", "must be between 0 (no cap) and %d, got %v", maxTransferRateMB, c.Transfer.RateMB)
	}
	if c.Transfer.MaxInFlight < 1 || c.Transfer.MaxInFlight > 64 {
		bad("transfer.max_in_flight", "must be between 1 and 64, got %d", c.Transfer.MaxInFlight)
	}
	if c.AAE.Interval < 0 {
		bad("aae.interval", "must be >= 0 (0 turns anti-entropy off), got %s", c.AAE.Interval)
	}
	if c.AAE.RateMB <= 0 || c.AAE.RateMB > maxTransferRateMB {
		bad("aae.rate_mb", "must be above 0 and at most %d, got %v", maxTransferRateMB, c.AAE.RateMB)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
}

// checkLoopback refuses listen addresses whose advertised hosts disagree
// about loopback. Peers learn this node's RPC, HTTP and RESP addresses from
// gossip: one advertised on loopback while the gossip address is not sends
// every peer on another host to its own loopback, where its own node
// answers in this one's place (a write acknowledged by W nodes would sit
// on fewer); the reverse advertises a routable address while the cluster
// runs on loopback. A listener bound to loopback but advertised (through
// listen.advertise) as another address cannot be reached there at all.
// Hostnames other than localhost are taken as not loopback.
func (l ListenConfig) checkLoopback(bad badFunc) {
	if _, _, err := net.SplitHostPort(l.Gossip); err != nil {
		return // reported as malformed
	}
	// What gossip advertises, by the node's own rules (advertiseHost); on
	// a wildcard that is a private IP, never loopback, so any host that is
	// not loopback stands in for it here.
	gadv, _, _ := advertiseHost(l, func() (string, error) { return "private-ip", nil })
	for _, a := range []struct{ key, addr string }{
		{"listen.gossip", l.Gossip}, {"listen.rpc", l.RPC}, {"listen.http", l.HTTP}, {"listen.resp", l.RESP},
	} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil || isWildcard(host) {
			continue // malformed (reported) or advertised as gossip's host
		}
		adv, _, _ := net.SplitHostPort(advertised(a.addr, gadv, l.Advertise != ""))
		switch {
		case isLoopback(host) != isLoopback(adv):
			bad(a.key, "%q is advertised as listen.advertise %q, which it does not listen on", a.addr, l.Advertise)
		case a.key != "listen.gossip" && isLoopback(adv) && !isLoopback(gadv):
			bad(a.key, "%q is on loopback while listen.gossip %q is not: peers on other hosts would reach their own loopback; listen on an address they can reach", a.addr, l.Gossip)
		case a.key != "listen.gossip" && !isLoopback(adv) && isLoopback(gadv):
			bad(a.key, "%q is not on loopback while listen.gossip %q is: put every listener on loopback for a local cluster, or gossip on a reachable address", a.addr, l.Gossip)
		}
	}
}

// isLoopback reports whether host is a loopback address or "localhost".
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkQuorum parses a quorum spelling with replica's parser, the one
// every request uses: one, quorum, all (any case) or a number, which must
// be in 1..n. "" is replica.QuorumDefault. The error is phrased for a
// message that starts with the config key or parameter name.
func checkQuorum(s string, n int) (replica.Quorum, error) {
	q, err := replica.ParseQuorum(s)
	if err != nil {
		return 0, fmt.Errorf("must be one, quorum, all or a number, got %q", truncateString(s, 64))
	}
	if q == replica.QuorumDefault {
		return q, nil
	}
	if _, err := q.Resolve(n); err != nil {
		return 0, fmt.Errorf("must be in 1..%d (cluster.replication), got %d", n, int(q))
	}
	return q, nil
}

// truncateString shortens s to at most n bytes for an error message.
func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// fileMode parses storage.file_mode: octal, with or without a leading 0
// or 0o, e.g. "0600" or "640".
func (s StorageConfig) fileMode() (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s.FileMode, "0o"), "0O")
	m, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octal file mode such as \"0600\"", s.FileMode)
	}
	if err := storage.ValidFileMode(os.FileMode(m)); err != nil {
		return 0, err
	}
	return os.FileMode(m), nil
}
