package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Scope is a permission of an API key (api.md): read ⊂ write ⊂ admin.
type Scope string

// The scopes of api.md.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// ValidScope reports whether s is read, write or admin.
func ValidScope(s string) bool {
	return s == string(ScopeRead) || s == string(ScopeWrite) || s == string(ScopeAdmin)
}

// Principal is an authenticated caller.
type Principal struct {
	KeyID  string
	Scopes []string
}

// LogValue keeps log lines to the key id.
func (p *Principal) LogValue() slog.Value { return slog.StringValue(p.KeyID) }

// Can reports whether p holds need or a scope that includes it.
func (p *Principal) Can(need Scope) bool {
	for _, s := range p.Scopes {
		switch Scope(s) {
		case ScopeAdmin:
			return true
		case ScopeWrite:
			if need != ScopeAdmin {
				return true
			}
		case ScopeRead:
			if need == ScopeRead {
				return true
			}
		}
	}
	return false
}

// Secret is an API key's secret; it redacts itself in logs.
type Secret string

// LogValue redacts the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// keyCache holds the live API keys by the hash of their secret.
type keyCache struct {
	mu     sync.RWMutex
	byHash map[journal.Hash]journal.APIKey
}

func (c *keyCache) load(ctx context.Context, store engine.Store) error {
	keys, err := store.APIKeys(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byHash = make(map[journal.Hash]journal.APIKey, len(keys))
	for _, k := range keys {
		if !k.Revoked {
			c.byHash[k.Hash] = k
		}
	}
	return nil
}

func (c *keyCache) put(k journal.APIKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k.Revoked {
		delete(c.byHash, k.Hash)
	} else {
		c.byHash[k.Hash] = k
	}
}

// HashSecret is how key secrets are stored: SHA-256 of the secret. Secrets carry 256 bits
// of entropy, so a fast hash is enough (no password stretching needed).
func HashSecret(secret string) journal.Hash { return sha256.Sum256([]byte(secret)) }

// Authenticate returns the principal of a key secret, or an unauthenticated error.
func (s *Service) Authenticate(secret string) (*Principal, error) {
	h := HashSecret(secret)
	s.keys.mu.RLock()
	k, ok := s.keys.byHash[h]
	s.keys.mu.RUnlock()
	// The map lookup is on the hash, never the secret; compare once more in constant time.
	if !ok || subtle.ConstantTimeCompare(k.Hash[:], h[:]) != 1 || secret == "" {
		return nil, ledger.Errorf(ledger.CodeUnauthenticated, "missing or unknown API key")
	}
	return &Principal{KeyID: k.ID, Scopes: k.Scopes}, nil
}

// NewSecret returns a fresh random API key secret.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "tpw_" + base64.RawURLEncoding.EncodeToString(b[:])
}

func newKeyID() string {
	var b [8]byte
	rand.Read(b[:])
	return "key_" + hex.EncodeToString(b[:])
}

// APIKey is an API key as api.md shows it; Secret is set only when it was just created.
type APIKey struct {
	ID        string
	Name      string
	Scopes    []string
	CreatedAt int64
	Secret    Secret
}

// CreateAPIKey stores a new key and returns it with its secret, the only time it is shown.
func (s *Service) CreateAPIKey(ctx context.Context, name string, scopes []string) (APIKey, error) {
	if len(scopes) == 0 {
		return APIKey{}, ledger.Errorf(ledger.CodeInvalidRequest, "scopes must name at least one of read, write, admin")
	}
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return APIKey{}, ledger.Errorf(ledger.CodeInvalidRequest, "unknown scope %q: use read, write or admin", sc)
		}
	}
	if len(name) > 256 || !ledger.ValidText(name) {
		return APIKey{}, ledger.Errorf(ledger.CodeInvalidRequest, "name must be at most 256 bytes of UTF-8 without NUL characters")
	}
	return s.storeKey(ctx, name, slices.Clone(scopes), NewSecret())
}

func (s *Service) storeKey(ctx context.Context, name string, scopes []string, secret string) (APIKey, error) {
	k := journal.APIKey{ID: newKeyID(), Name: name, Scopes: scopes, Hash: HashSecret(secret),
		CreatedAt: s.opts.Now().UnixNano()}
	eng, err := s.writer()
	if err != nil {
		return APIKey{}, err
	}
	if _, err := eng.Submit(ctx, &engine.Submission{APIKeys: []journal.APIKey{k}}); err != nil {
		return APIKey{}, s.engineError(err)
	}
	s.keys.put(k)
	return APIKey{ID: k.ID, Name: name, Scopes: scopes, CreatedAt: k.CreatedAt, Secret: Secret(secret)}, nil
}

// EnsureAdminKey makes sure secret is a live admin key (TPWALLET_ADMIN_KEY); it never
// removes other keys. created reports whether it had to store it.
func (s *Service) EnsureAdminKey(ctx context.Context, secret string) (created bool, err error) {
	if len(secret) < 16 {
		return false, errors.New("service: the admin key must be at least 16 characters")
	}
	if p, err := s.Authenticate(secret); err == nil && p.Can(ScopeAdmin) {
		return false, nil
	}
	_, err = s.storeKey(ctx, "admin", []string{string(ScopeAdmin)}, secret)
	return err == nil, err
}

// HasKeys reports whether any live key exists.
func (s *Service) HasKeys() bool {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return len(s.keys.byHash) > 0
}

// APIKeys lists the keys that are not revoked, ordered by id.
func (s *Service) APIKeys(ctx context.Context) ([]APIKey, error) {
	all, err := s.store.APIKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]APIKey, 0, len(all))
	for _, k := range all {
		if !k.Revoked {
			out = append(out, APIKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt})
		}
	}
	return out, nil
}

// RevokeAPIKey makes the key stop working at once, also across restarts.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) error {
	all, err := s.store.APIKeys(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(k journal.APIKey) bool { return k.ID == id && !k.Revoked })
	if i < 0 {
		return ledger.Errorf(ledger.CodeNotFound, "no API key with that id")
	}
	k := all[i]
	k.Revoked = true
	eng, err := s.writer()
	if err != nil {
		return err
	}
	if _, err := eng.Submit(ctx, &engine.Submission{APIKeys: []journal.APIKey{k}}); err != nil {
		return fmt.Errorf("service: revoke key: %w", s.engineError(err))
	}
	s.keys.put(k)
	return nil
}
