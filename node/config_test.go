package node

import (
	"strings"
	"testing"
)

// TestValidateWildcardRPCNeedsAdvertise: the RPC address is advertised to
// peers as bound. A wildcard host ("0.0.0.0", "::", empty) dialled by a
// peer reaches the peer itself, so its "replica" acknowledgements would come
// from its own store: a write acknowledged by W nodes would sit on one.
func TestValidateWildcardRPCNeedsAdvertise(t *testing.T) {
	for _, tc := range []struct {
		rpc, advertise string
		wantErr        bool
	}{
		{"127.0.0.1:7001", "", false},
		{"10.1.2.3:7001", "", false},
		{"0.0.0.0:7001", "", true},
		{"[::]:7001", "", true},
		{":7001", "", true},
		{"0.0.0.0:7001", "10.1.2.3", false},
		{":7001", "10.1.2.4", false},
	} {
		cfg := DefaultConfig()
		cfg.Listen.RPC, cfg.Listen.Advertise = tc.rpc, tc.advertise
		err := cfg.Validate()
		if gotErr := err != nil; gotErr != tc.wantErr {
			t.Errorf("rpc %q advertise %q: Validate = %v, want error %v", tc.rpc, tc.advertise, err, tc.wantErr)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), "listen.rpc") || !strings.Contains(err.Error(), "listen.advertise")) {
			t.Errorf("rpc %q: error %q should name listen.rpc and listen.advertise", tc.rpc, err)
		}
	}
}
