package acl

import (
	"crypto/hmac"
	"fmt"
	"net/netip"
)

// Request is what a check needs of a request.
type Request struct {
	Fields map[string]string // extension fields, Signature included
	Body   []byte
	Remote netip.Addr
}

// Need is what a request needs: permissions on topics and groups, or
// admin rights.
type Need struct {
	Admin  bool
	Topics map[string]Perm
	Groups map[string]Perm
}

// Authenticate finds the request's account and checks its signature. A
// request from a globally whitelisted address needs neither; it then
// returns a nil account, which Authorize lets through.
func (c *Config) Authenticate(r Request) (*Account, error) {
	for _, w := range c.GlobalWhiteRemoteAddresses {
		if matchPattern(w, r.Remote) {
			return nil, nil
		}
	}
	ak := r.Fields[FieldAccessKey]
	if ak == "" {
		return nil, ErrNoAccessKey
	}
	a, ok := c.Accounts[ak]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, ak)
	}
	if a.WhiteRemoteAddress != "" && matchPattern(a.WhiteRemoteAddress, r.Remote) {
		return a, nil
	}
	sig := r.Fields[FieldSignature]
	signed := make(map[string]string, len(r.Fields))
	for k, v := range r.Fields {
		if k != FieldSignature && k != FieldSecurityToken {
			signed[k] = v
		}
	}
	if hmac.Equal([]byte(sig), []byte(Sign(signed, r.Body, a.SecretKey))) {
		return a, nil
	}
	// Java clients sign the security token too.
	if tok, has := r.Fields[FieldSecurityToken]; has {
		signed[FieldSecurityToken] = tok
		if hmac.Equal([]byte(sig), []byte(Sign(signed, r.Body, a.SecretKey))) {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w for AccessKey %q", ErrSignature, ak)
}

// Authorize checks an authenticated account's rights against a need.
func (c *Config) Authorize(a *Account, need Need) error {
	if a == nil || a.Admin {
		return nil
	}
	if need.Admin {
		return fmt.Errorf("%w: AccessKey %q is not an admin account", ErrDenied, a.AccessKey)
	}
	for t, p := range need.Topics {
		if !a.TopicPerm(t).Allows(p) {
			return fmt.Errorf("%w: AccessKey %q has no %s permission on topic %s", ErrDenied, a.AccessKey, p, t)
		}
	}
	for g, p := range need.Groups {
		if !a.GroupPerm(g).Allows(p) {
			return fmt.Errorf("%w: AccessKey %q has no %s permission on group %s", ErrDenied, a.AccessKey, p, g)
		}
	}
	return nil
}

// String names a permission set.
func (p Perm) String() string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p == Pub|Sub:
		return "PUB|SUB"
	case p == Pub:
		return "PUB"
	case p == Sub:
		return "SUB"
	}
	return "none"
}
