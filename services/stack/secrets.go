package stack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"

	"qianlang.io/services/auth"
)

// Secrets is DIR/secrets.json (mode 0600), generated once per stack
// directory and reused afterwards. Every service reads it (--secrets).
type Secrets struct {
	// The services' secrets: the token secret (the HMAC key is the hex
	// string's ASCII bytes as they are, see the gateway's auth.lua), the
	// admin token and the provider's callback key.
	auth.Secrets
	// MySQLRootPassword is root's password over TCP (root@127.0.0.1).
	MySQLRootPassword string `json:"mysql_root_password"`
}

var (
	hex64    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	safeText = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// newSecrets makes a fresh set.
func newSecrets() Secrets {
	return Secrets{
		Secrets:           auth.Secrets{TokenSecret: randomHex(32), AdminToken: "adm_" + randomHex(24), ProviderSecret: randomHex(32)},
		MySQLRootPassword: randomHex(16),
	}
}

func (s Secrets) validate() error {
	var errs []error
	if !hex64.MatchString(s.TokenSecret) {
		errs = append(errs, errors.New("token_secret: want 64 lowercase hex characters"))
	}
	if !hex64.MatchString(s.ProviderSecret) {
		errs = append(errs, errors.New("provider_secret: want 64 lowercase hex characters"))
	}
	if !safeText.MatchString(s.AdminToken) {
		errs = append(errs, errors.New("admin_token: want 16..128 of A-Z a-z 0-9 _ -"))
	}
	if !safeText.MatchString(s.MySQLRootPassword) {
		errs = append(errs, errors.New("mysql_root_password: want 16..128 of A-Z a-z 0-9 _ -"))
	}
	return errors.Join(errs...)
}

// LoadSecrets reads a secrets file.
func LoadSecrets(path string) (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("secrets %s: %w", path, err)
	}
	return s, nil
}

// loadOrCreateSecrets returns the secrets of path, creating the file when
// it does not exist. A file from an older qlstack that lacks a field gets
// the field added; the others are kept.
func loadOrCreateSecrets(path string) (Secrets, error) {
	s, err := LoadSecrets(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s = newSecrets()
	case err != nil:
		return s, err
	default:
		fresh := newSecrets()
		for _, f := range []struct{ have, fresh *string }{
			{&s.TokenSecret, &fresh.TokenSecret}, {&s.AdminToken, &fresh.AdminToken},
			{&s.ProviderSecret, &fresh.ProviderSecret}, {&s.MySQLRootPassword, &fresh.MySQLRootPassword},
		} {
			if *f.have == "" {
				*f.have = *f.fresh
			}
		}
		if err := s.validate(); err != nil {
			return s, fmt.Errorf("secrets %s: %w (fix or remove the file)", path, err)
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return s, err
	}
	return s, writeFileAtomic(path, append(b, '\n'), 0o600)
}
