package replica

// LoadTransfers exposes loadTransfers to the external tests.
func LoadTransfers(dir, node string) error {
	_, err := loadTransfers(dir, node)
	return err
}
