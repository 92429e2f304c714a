package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ringkv/ringkv/node"
)

// envPrefix is the prefix of every environment variable the server reads:
// the key node.name is RINGKV_NODE_NAME, listen.http is RINGKV_LISTEN_HTTP.
const envPrefix = "RINGKV"

// serverFlags maps each command-line flag of "ringkv server" to the config
// key it sets. Only the keys an operator changes per node get a flag; every
// key has a YAML spelling and an environment variable.
var serverFlags = []struct {
	flag, key, usage string
}{
	{"name", "node.name", "node name, unique in the cluster (node.name)"},
	{"zone", "node.zone", "zone (failure domain) the node is in; replicas spread over zones (node.zone)"},
	{"data-dir", "node.data_dir", "data directory (node.data_dir)"},
	{"http", "listen.http", "HTTP listen address host:port (listen.http)"},
	{"resp", "listen.resp", "Redis-protocol listen address host:port (listen.resp)"},
	{"rpc", "listen.rpc", "internal RPC listen address host:port (listen.rpc)"},
	{"gossip", "listen.gossip", "gossip listen address host:port (listen.gossip)"},
	{"seeds", "seeds", "comma-separated gossip addresses of nodes to join (seeds)"},
	{"bootstrap", "bootstrap", "on a first start, serve clients before any seed answered and start a new cluster if none does; restarted, only while the node's plan is itself alone (bootstrap)"},
}

// addServerFlags declares the server flags on fs.
func addServerFlags(fs *pflag.FlagSet) {
	for _, f := range serverFlags {
		switch f.key {
		case "seeds":
			fs.StringSlice(f.flag, nil, f.usage)
			continue
		case "bootstrap":
			fs.Bool(f.flag, false, f.usage)
			continue
		}
		fs.String(f.flag, "", f.usage)
	}
}

// configKey is one leaf of node.Config: its dotted YAML key and its value in
// node.DefaultConfig().
type configKey struct {
	Key     string
	Default any
}

// configKeys lists every leaf key of node.Config in declaration order,
// derived from the mapstructure tags, so that adding a field to node.Config
// needs no change here: it gets a default, an environment variable and a
// place in the unknown-key check automatically.
func configKeys() []configKey {
	var keys []configKey
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			if f.Type.Kind() == reflect.Struct {
				walk(key, v.Field(i))
				continue
			}
			keys = append(keys, configKey{Key: key, Default: v.Field(i).Interface()})
		}
	}
	walk("", reflect.ValueOf(node.DefaultConfig()))
	return keys
}

// loadConfig builds the server configuration with the precedence
// flags > RINGKV_* environment > config file > node.DefaultConfig().
// file may be empty (no file); flags may be nil. It rejects unknown keys in
// the file, naming them, and returns the result of node.Config.Validate.
func loadConfig(file string, flags *pflag.FlagSet) (node.Config, error) {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	known := map[string]bool{}
	for _, k := range configKeys() {
		known[k.Key] = true
		v.SetDefault(k.Key, k.Default)
		// Binding each key explicitly makes its variable visible to
		// Unmarshal even when no file mentions the key; AutomaticEnv alone
		// only answers Get calls.
		if err := v.BindEnv(k.Key); err != nil {
			return node.Config{}, fmt.Errorf("bind env for %s: %w", k.Key, err)
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return node.Config{}, fmt.Errorf("read config file %s: %w", file, err)
		}
		if err := checkKeys(v.AllKeys(), known); err != nil {
			return node.Config{}, fmt.Errorf("config file %s:\n%w", file, indented{err})
		}
	}
	if flags != nil {
		for _, f := range serverFlags {
			pf := flags.Lookup(f.flag)
			if pf == nil {
				continue
			}
			if err := v.BindPFlag(f.key, pf); err != nil {
				return node.Config{}, fmt.Errorf("bind flag --%s: %w", f.flag, err)
			}
		}
	}
	var cfg node.Config
	if err := v.UnmarshalExact(&cfg); err != nil {
		return node.Config{}, fmt.Errorf("decode config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return node.Config{}, fmt.Errorf("invalid configuration:\n%w", indented{err})
	}
	return cfg, nil
}

// indented prints a (joined, multi-line) error with every line indented,
// under a heading line; errors.Is and errors.As still see the original.
type indented struct{ err error }

func (e indented) Error() string {
	return "  " + strings.ReplaceAll(e.err.Error(), "\n", "\n  ")
}

func (e indented) Unwrap() error { return e.err }

// checkKeys reports every key that node.Config does not have. A typo in a
// config file must stop the server rather than silently fall back to a
// default (fsnc: none would otherwise leave fsync: always in force).
func checkKeys(keys []string, known map[string]bool) error {
	sections := map[string]bool{}
	for k := range known {
		if i := strings.LastIndex(k, "."); i > 0 {
			sections[k[:i]] = true
		}
	}
	var errs []error
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case known[k]:
		case sections[k]:
			errs = append(errs, fmt.Errorf("key %q is a section and needs sub-keys, not a value", k))
		default:
			errs = append(errs, fmt.Errorf("unknown key %q (see configs/production.yaml for every key)", k))
		}
	}
	return errors.Join(errs...)
}

// envKey returns the environment variable that sets a config key.
func envKey(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// lookupEnvKeys lists the RINGKV_* variables set in the environment that
// match no config key, so that a misspelt variable is reported instead of
// ignored. The client commands' RINGKV_TOKEN is not a server key but is
// no mistake either.
func lookupEnvKeys() []string {
	valid := map[string]bool{tokenEnv: true}
	for _, e := range clientTLSEnv {
		valid[e.env] = true // the client commands'
	}
	for _, k := range configKeys() {
		valid[envKey(k.Key)] = true
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !valid[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return unknown
}
