package replica

import "github.com/ringkv/ringkv/internal/vfs"

// LoadTransfers exposes loadTransfers to the external tests.
func LoadTransfers(dir, node string) error {
	_, err := loadTransfers(vfs.OSFS{}, dir, node)
	return err
}
