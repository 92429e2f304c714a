package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Name, c.Dir = "n1", "/tmp/x"
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   error // nil: valid
	}{
		{"default with name and dir", func(*Config) {}, nil},
		{"local profile", func(c *Config) { c.Profile = ProfileLocal }, nil},
		{"host:port bind", func(c *Config) { c.BindAddr = "127.0.0.1:7946" }, nil},
		{"host:port bind with equal port", func(c *Config) { c.BindAddr, c.BindPort = "127.0.0.1:7946", 7946 }, nil},
		{"32-byte key", func(c *Config) { c.SecretKey = make([]byte, 32) }, nil},
		{"seeds", func(c *Config) { c.Seeds = []string{"127.0.0.1:7946", "node2.example:7946"} }, nil},
		{"no name", func(c *Config) { c.Name = "" }, ErrBadConfig},
		{"slash in name", func(c *Config) { c.Name = "a/b" }, ErrBadName},
		{"no dir", func(c *Config) { c.Dir = "" }, ErrBadConfig},
		{"bind not an IP", func(c *Config) { c.BindAddr = "localhost" }, ErrBadConfig},
		{"bind port disagrees", func(c *Config) { c.BindAddr, c.BindPort = "127.0.0.1:1", 2 }, ErrBadConfig},
		{"bind port out of range", func(c *Config) { c.BindPort = 70000 }, ErrBadConfig},
		{"advertise not an IP", func(c *Config) { c.AdvertiseAddr = "example.com" }, ErrBadConfig},
		{"seed without port", func(c *Config) { c.Seeds = []string{"127.0.0.1"} }, ErrBadConfig},
		{"key of 10 bytes", func(c *Config) { c.SecretKey = make([]byte, 10) }, ErrBadConfig},
		{"unknown profile", func(c *Config) { c.Profile = "wan" }, ErrBadConfig},
		{"zero max stream bytes (the default)", func(c *Config) { c.MaxStreamBytes = 0 }, nil},
		{"negative max stream bytes", func(c *Config) { c.MaxStreamBytes = -1 }, ErrBadConfig},
		{"zero max concurrent streams (the default)", func(c *Config) { c.MaxConcurrentStreams = 0 }, nil},
		{"negative max concurrent streams", func(c *Config) { c.MaxConcurrentStreams = -1 }, ErrBadConfig},
		{"negative rejoin", func(c *Config) { c.RejoinInterval = -time.Second }, ErrBadConfig},
		{"meta too large", func(c *Config) { c.Meta.RPC = strings.Repeat("x", 600) }, ErrBadMeta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMemberlistConfigProfiles(t *testing.T) {
	c := DefaultConfig()
	c.Name, c.Dir, c.BindAddr, c.SecretKey = "n1", "/tmp/x", "127.0.0.1:7000", make([]byte, 16)
	lan, err := c.memberlistConfig()
	if err != nil {
		t.Fatal(err)
	}
	if lan.Name != "n1" || lan.BindAddr != "127.0.0.1" || lan.BindPort != 7000 {
		t.Errorf("lan name/bind = %q %q %d", lan.Name, lan.BindAddr, lan.BindPort)
	}
	if lan.ProbeInterval != time.Second || lan.Keyring == nil || !lan.GossipVerifyIncoming {
		t.Errorf("lan profile: probe %v keyring %v verify %v", lan.ProbeInterval, lan.Keyring, lan.GossipVerifyIncoming)
	}
	c.Profile = ProfileLocal
	local, err := c.memberlistConfig()
	if err != nil {
		t.Fatal(err)
	}
	if local.ProbeInterval >= lan.ProbeInterval || local.GossipToTheDeadTime >= lan.GossipToTheDeadTime {
		t.Errorf("local profile is not faster: probe %v, dead time %v", local.ProbeInterval, local.GossipToTheDeadTime)
	}
	if got := c.rejoinInterval(); got != time.Second {
		t.Errorf("local rejoin interval = %v", got)
	}
	c.Profile, c.RejoinInterval = ProfileLAN, 0
	if got := c.rejoinInterval(); got != 30*time.Second {
		t.Errorf("lan rejoin interval = %v", got)
	}
}
