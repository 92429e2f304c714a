package node

import (
	"errors"
	"fmt"
)

// ReloadTokens applies auth.tokens and auth.tokens_file of cfg, a
// configuration read again (on SIGHUP), to the running node: the file is
// read again, and the new set replaces the old one at once for every
// listener. Requests check the new set from then on; a RESP connection
// logged in with a token that is no longer there (removed, or its hash
// replaced) is logged out before its next command, and one whose token
// changed role gets the new role. Nothing else of cfg is applied. On any
// error the tokens in force stay: a tokens file that does not parse, and
// turning authentication on or off, which takes a restart (protected mode
// and the RESP limits before AUTH are decided at start).
func (n *Node) ReloadTokens(cfg Config) error {
	n.authMu.Lock()
	defer n.authMu.Unlock()
	if n.auth == nil {
		_, err := loadTokens(cfg.Auth)
		switch {
		case errors.Is(err, errNoTokens):
			return nil
		case err != nil:
			return fmt.Errorf("reload %w", err)
		}
		return errors.New("reload config auth.tokens, auth.tokens_file: tokens are named now, but this node started without any: turning authentication on takes a restart")
	}
	set, changed, err := n.auth.reload(cfg.Auth)
	switch {
	case errors.Is(err, errNoTokens):
		return errors.New("reload config auth.tokens, auth.tokens_file: they name no tokens, but this node authenticates clients: turning authentication off takes a restart; the tokens in force stay")
	case err != nil:
		return fmt.Errorf("reload %w; the tokens in force stay", err)
	}
	if changed {
		n.log.Info("auth tokens reloaded", "tokens", len(set.tokens), "generation", set.gen)
	}
	return nil
}
