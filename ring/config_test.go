package ring

import (
	"errors"
	"math"
	"testing"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"smallest", Config{Partitions: 2, ReplicationFactor: 1, Load: 1, VirtualNodes: 1}, true},
		{"largest", Config{Partitions: MaxPartitions, ReplicationFactor: MaxReplicationFactor, Load: MaxLoad, VirtualNodes: MaxVirtualNodes}, true},
		{"zero value", Config{}, false},
		{"partitions not prime", mod(func(c *Config) { c.Partitions = 1024 }), false},
		{"partitions one", mod(func(c *Config) { c.Partitions = 1 }), false},
		{"partitions negative", mod(func(c *Config) { c.Partitions = -7 }), false},
		{"partitions too many", mod(func(c *Config) { c.Partitions = 65537 }), false},
		{"replication zero", mod(func(c *Config) { c.ReplicationFactor = 0 }), false},
		{"replication too high", mod(func(c *Config) { c.ReplicationFactor = MaxReplicationFactor + 1 }), false},
		{"load below one", mod(func(c *Config) { c.Load = 0.99 }), false},
		{"load NaN", mod(func(c *Config) { c.Load = math.NaN() }), false},
		{"load infinite", mod(func(c *Config) { c.Load = math.Inf(1) }), false},
		{"virtual nodes zero", mod(func(c *Config) { c.VirtualNodes = 0 }), false},
		{"virtual nodes too many", mod(func(c *Config) { c.VirtualNodes = MaxVirtualNodes + 1 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestIsPrime checks trial division against a sieve.
func TestIsPrime(t *testing.T) {
	const n = 70000
	composite := make([]bool, n)
	for i := 2; i < n; i++ {
		if !composite[i] {
			for j := i * i; j < n; j += i {
				composite[j] = true
			}
		}
	}
	for i := -3; i < n; i++ {
		want := i >= 2 && !composite[i]
		if got := isPrime(i); got != want {
			t.Fatalf("isPrime(%d) = %v, want %v", i, got, want)
		}
	}
}
