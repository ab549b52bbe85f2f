// Package auth signs and checks what proves who is calling: users' login
// tokens, the operator's admin token, and the signatures on the provider's
// callbacks.
//
// A login token is
//
//	v1.<user_id>.<exp_unix_seconds>.<sig>
//
// where sig is HMAC-SHA1, keyed with the token secret's bytes as written in
// the secrets file, over "v1.<user_id>.<exp_unix_seconds>", in base64url
// without padding. The gateway's Lua (deploy/nginx/lua/auth.lua) checks the
// same format with ngx.hmac_sha1, so a bad token never reaches a service;
// the services check it again.
package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"qianlang.io/services/httpapi"
)

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidUserID reports whether id may be a user id: 1 to 64 letters, digits,
// '-' or '_'.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// ErrBadToken is returned for a token that is malformed, forged or expired.
var ErrBadToken = errors.New("bad token")

// Secrets is the secrets file every service reads (written by qlstack).
type Secrets struct {
	TokenSecret    string `json:"token_secret"`
	AdminToken     string `json:"admin_token"`
	ProviderSecret string `json:"provider_secret"`
}

// LoadSecrets reads and checks a secrets file.
func LoadSecrets(path string) (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("secrets %s: %w", path, err)
	}
	return s, s.Validate()
}

// Validate checks that every secret is long enough to be one.
func (s Secrets) Validate() error {
	for _, f := range []struct{ key, v string }{{"token_secret", s.TokenSecret}, {"admin_token", s.AdminToken}, {"provider_secret", s.ProviderSecret}} {
		if len(f.v) < 16 {
			return fmt.Errorf("secrets: %s must be at least 16 characters, got %d", f.key, len(f.v))
		}
	}
	return nil
}

// Tokens signs and checks login tokens and the admin token.
type Tokens struct {
	secret []byte
	admin  string
	now    func() time.Time
}

// NewTokens returns the token checker for s.
func NewTokens(s Secrets) *Tokens {
	return &Tokens{secret: []byte(s.TokenSecret), admin: s.AdminToken, now: time.Now}
}

func (t *Tokens) sig(payload string) string {
	m := hmac.New(sha1.New, t.secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns a token for userID valid until exp.
func (t *Tokens) Sign(userID string, exp time.Time) (string, error) {
	if !ValidUserID(userID) {
		return "", fmt.Errorf("user id %q: want 1-64 of [A-Za-z0-9_-]", userID)
	}
	payload := "v1." + userID + "." + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + t.sig(payload), nil
}

// Verify returns the user a token was signed for.
func (t *Tokens) Verify(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != "v1" || !ValidUserID(parts[1]) {
		return "", ErrBadToken
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", ErrBadToken
	}
	want := t.sig(strings.Join(parts[:3], "."))
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[3])) != 1 {
		return "", ErrBadToken
	}
	if t.now().Unix() >= exp {
		return "", ErrBadToken
	}
	return parts[1], nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(tok), ok && tok != ""
}

// User returns the user calling r, from its bearer token.
func (t *Tokens) User(r *http.Request) (string, error) {
	tok, ok := bearer(r)
	if !ok {
		return "", ErrBadToken
	}
	return t.Verify(tok)
}

// ErrNotAdmin is returned by Admin for a caller with a valid user token.
var ErrNotAdmin = errors.New("not an admin")

// Admin checks that r carries the admin token: ErrBadToken when it carries
// none or a bad one, ErrNotAdmin when it carries a valid user token.
func (t *Tokens) Admin(r *http.Request) error {
	tok, ok := bearer(r)
	if !ok {
		return ErrBadToken
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(t.admin)) == 1 {
		return nil
	}
	if _, err := t.Verify(tok); err == nil {
		return ErrNotAdmin
	}
	return ErrBadToken
}

// SignatureHeader carries a callback body's signature.
const SignatureHeader = "X-Signature"

// SignBody returns the hex HMAC-SHA256 of body under secret, as the provider
// signs its callbacks.
func SignBody(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyBody reports whether sig is body's signature under secret.
func VerifyBody(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(SignBody(secret, body)), []byte(sig))
}

// RequireUser returns the user calling r, or the contract's 401.
func (t *Tokens) RequireUser(r *http.Request) (string, error) {
	u, err := t.User(r)
	if err != nil {
		return "", httpapi.Unauthorized("missing or invalid token")
	}
	return u, nil
}

// RequireAdmin returns nil for the admin token, the contract's 403 for a
// user's token and 401 for anything else.
func (t *Tokens) RequireAdmin(r *http.Request) error {
	switch err := t.Admin(r); {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotAdmin):
		return httpapi.Forbidden("admin token required")
	default:
		return httpapi.Unauthorized("missing or invalid token")
	}
}
