// Package acl authenticates and authorizes clients the way RocketMQ's
// plain ACL does: each request carries an AccessKey and a Signature, the
// base64 HMAC-SHA1, under the account's secret key, of the request's
// extension field values in key order followed by its body. Accounts come
// from a plain_acl.yml file: per-topic and per-group permissions (DENY,
// PUB, SUB, PUB|SUB, ANY), defaults for the rest, remote-address
// whitelists, and an admin flag for the administrative requests.
package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Sentinel errors of the checks; every error wraps one of them.
var (
	ErrNoAccessKey  = errors.New("acl: no AccessKey in the request")
	ErrUnknownKey   = errors.New("acl: unknown AccessKey")
	ErrSignature    = errors.New("acl: signature mismatch")
	ErrDenied       = errors.New("acl: permission denied")
	ErrConfig       = errors.New("acl: bad configuration")
	ErrNotWhitelist = errors.New("acl: remote address not in the account's whitelist")
)

// Field names of the signed request.
const (
	FieldAccessKey     = "AccessKey"
	FieldSignature     = "Signature"
	FieldSecurityToken = "SecurityToken"
)

// Perm is a permission set.
type Perm uint8

// Permissions.
const (
	Deny Perm = 1 << iota
	Pub
	Sub
)

// ParsePerm reads "DENY", "PUB", "SUB", "PUB|SUB" or "ANY".
func ParsePerm(s string) (Perm, error) {
	var p Perm
	for _, part := range strings.Split(strings.ToUpper(strings.TrimSpace(s)), "|") {
		switch strings.TrimSpace(part) {
		case "DENY":
			p |= Deny
		case "PUB":
			p |= Pub
		case "SUB":
			p |= Sub
		case "ANY":
			p |= Pub | Sub
		default:
			return 0, fmt.Errorf("%w: permission %q: want DENY, PUB, SUB, PUB|SUB or ANY", ErrConfig, s)
		}
	}
	return p, nil
}

// Allows reports whether p grants want.
func (p Perm) Allows(want Perm) bool { return p&Deny == 0 && p&want == want }

// Sign computes the signature of a request: fields are the extension
// fields without Signature (AccessKey included).
func Sign(fields map[string]string, body []byte, secretKey string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(secretKey))
	for _, k := range keys {
		mac.Write([]byte(fields[k]))
	}
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Account is one access key's rights.
type Account struct {
	AccessKey          string
	SecretKey          string
	Admin              bool
	DefaultTopicPerm   Perm
	DefaultGroupPerm   Perm
	TopicPerms         map[string]Perm
	GroupPerms         map[string]Perm
	WhiteRemoteAddress string
}

// TopicPerm is the account's permission on a topic.
func (a *Account) TopicPerm(topic string) Perm {
	if p, ok := a.TopicPerms[topic]; ok {
		return p
	}
	return a.DefaultTopicPerm
}

// GroupPerm is the account's permission on a consumer group.
func (a *Account) GroupPerm(group string) Perm {
	if p, ok := a.GroupPerms[group]; ok {
		return p
	}
	return a.DefaultGroupPerm
}

// Config is a loaded plain_acl.yml.
type Config struct {
	GlobalWhiteRemoteAddresses []string
	Accounts                   map[string]*Account
}

type fileConfig struct {
	GlobalWhiteRemoteAddresses []string `yaml:"globalWhiteRemoteAddresses"`
	Accounts                   []struct {
		AccessKey          string   `yaml:"accessKey"`
		SecretKey          string   `yaml:"secretKey"`
		WhiteRemoteAddress string   `yaml:"whiteRemoteAddress"`
		Admin              bool     `yaml:"admin"`
		DefaultTopicPerm   string   `yaml:"defaultTopicPerm"`
		DefaultGroupPerm   string   `yaml:"defaultGroupPerm"`
		TopicPerms         []string `yaml:"topicPerms"`
		GroupPerms         []string `yaml:"groupPerms"`
	} `yaml:"accounts"`
}

// Parse reads a plain_acl.yml. Every error names the account and key.
func Parse(data []byte) (*Config, error) {
	var f fileConfig
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c := &Config{Accounts: make(map[string]*Account)}
	for _, w := range f.GlobalWhiteRemoteAddresses {
		if err := checkPattern(w); err != nil {
			return nil, fmt.Errorf("%w: globalWhiteRemoteAddresses %q: %v", ErrConfig, w, err)
		}
		c.GlobalWhiteRemoteAddresses = append(c.GlobalWhiteRemoteAddresses, w)
	}
	var errs []error
	for i, fa := range f.Accounts {
		where := fmt.Sprintf("accounts[%d] (accessKey %q)", i, fa.AccessKey)
		if len(fa.AccessKey) < 6 || len(fa.SecretKey) < 6 {
			errs = append(errs, fmt.Errorf("%w: %s: accessKey and secretKey need at least 6 characters", ErrConfig, where))
			continue
		}
		if _, dup := c.Accounts[fa.AccessKey]; dup {
			errs = append(errs, fmt.Errorf("%w: %s: the accessKey appears twice", ErrConfig, where))
			continue
		}
		a := &Account{AccessKey: fa.AccessKey, SecretKey: fa.SecretKey, Admin: fa.Admin, WhiteRemoteAddress: fa.WhiteRemoteAddress,
			TopicPerms: map[string]Perm{}, GroupPerms: map[string]Perm{}, DefaultTopicPerm: Deny, DefaultGroupPerm: Deny}
		if a.WhiteRemoteAddress != "" {
			if err := checkPattern(a.WhiteRemoteAddress); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: whiteRemoteAddress %q: %v", ErrConfig, where, a.WhiteRemoteAddress, err))
			}
		}
		for key, dst := range map[string]*Perm{"defaultTopicPerm": &a.DefaultTopicPerm, "defaultGroupPerm": &a.DefaultGroupPerm} {
			v := map[string]string{"defaultTopicPerm": fa.DefaultTopicPerm, "defaultGroupPerm": fa.DefaultGroupPerm}[key]
			if v == "" {
				continue
			}
			p, err := ParsePerm(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, key, err))
			}
			*dst = p
		}
		errs = append(errs, parsePerms(where, "topicPerms", fa.TopicPerms, a.TopicPerms), parsePerms(where, "groupPerms", fa.GroupPerms, a.GroupPerms))
		c.Accounts[a.AccessKey] = a
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func parsePerms(where, key string, items []string, dst map[string]Perm) error {
	for _, it := range items {
		name, perm, ok := strings.Cut(it, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("%w: %s: %s entry %q: want name=PERM", ErrConfig, where, key, it)
		}
		p, err := ParsePerm(perm)
		if err != nil {
			return fmt.Errorf("%s: %s entry %q: %w", where, key, it, err)
		}
		dst[strings.TrimSpace(name)] = p
	}
	return nil
}

// checkPattern accepts an IP, "*", or an IPv4 pattern whose last parts are
// "*" (192.168.1.*), or a comma-separated list of those.
func checkPattern(p string) error {
	for _, part := range strings.Split(p, ",") {
		part = strings.TrimSpace(part)
		if part == "*" {
			continue
		}
		if _, err := netip.ParseAddr(part); err == nil {
			continue
		}
		fields := strings.Split(part, ".")
		if len(fields) != 4 {
			return errors.New("want an IP address, '*', or a pattern like 192.168.1.*")
		}
		for _, f := range fields {
			if f == "*" {
				continue
			}
			if _, err := netip.ParseAddr(f + ".0.0.0"); err != nil {
				return errors.New("want an IP address, '*', or a pattern like 192.168.1.*")
			}
		}
	}
	return nil
}

// matchPattern reports whether ip matches a pattern checkPattern accepts.
func matchPattern(p string, ip netip.Addr) bool {
	s := ip.Unmap().String()
	for _, part := range strings.Split(p, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || part == s {
			return true
		}
		pf, sf := strings.Split(part, "."), strings.Split(s, ".")
		if len(pf) != 4 || len(sf) != 4 {
			continue
		}
		ok := true
		for i := range pf {
			if pf[i] != "*" && pf[i] != sf[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
