package acl

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

const sample = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - orders=PUB|SUB
      - audit=PUB
      - secret=DENY
    groupPerms:
      - blocked=DENY
  - accessKey: opsadmin
    secretKey: 87654321
    admin: true
  - accessKey: trusted
    secretKey: trusted-secret
    whiteRemoteAddress: 192.168.1.*
`

func TestSignatureVector(t *testing.T) {
	// base64(HMAC-SHA1("12345678", "RocketMQ" + "1" + "T" + "hello")):
	// the values in key order (AccessKey, queueId, topic), then the body.
	got := Sign(map[string]string{"AccessKey": "RocketMQ", "topic": "T", "queueId": "1"}, []byte("hello"), "12345678")
	require.Equal(t, "Ps03UEyiKLtMsgPQ4dUCdn+uiLA=", got)
}

func signed(ak, sk string, fields map[string]string, body string) Request {
	f := map[string]string{"AccessKey": ak}
	for k, v := range fields {
		f[k] = v
	}
	f["Signature"] = Sign(f, []byte(body), sk)
	return Request{Fields: f, Body: []byte(body), Remote: netip.MustParseAddr("127.0.0.1")}
}

func TestAuthenticate(t *testing.T) {
	c, err := Parse([]byte(sample))
	require.NoError(t, err)
	fields := map[string]string{"topic": "orders", "queueId": "0"}

	a, err := c.Authenticate(signed("RocketMQ", "12345678", fields, "body"))
	require.NoError(t, err)
	require.Equal(t, "RocketMQ", a.AccessKey)

	for _, tc := range []struct {
		name string
		req  Request
		want error
	}{
		{"wrong secret", signed("RocketMQ", "wrong-secret", fields, "body"), ErrSignature},
		{"unknown key", signed("nobody1", "12345678", fields, "body"), ErrUnknownKey},
		{"no key", Request{Fields: map[string]string{"topic": "orders"}, Remote: netip.MustParseAddr("127.0.0.1")}, ErrNoAccessKey},
		{"tampered body", func() Request { r := signed("RocketMQ", "12345678", fields, "body"); r.Body = []byte("b0dy"); return r }(), ErrSignature},
		{"tampered field", func() Request {
			r := signed("RocketMQ", "12345678", fields, "body")
			r.Fields["topic"] = "secret"
			return r
		}(), ErrSignature},
	} {
		_, err := c.Authenticate(tc.req)
		require.ErrorIs(t, err, tc.want, tc.name)
	}

	// Whitelists skip the signature.
	r := Request{Fields: map[string]string{}, Remote: netip.MustParseAddr("10.10.103.7")}
	a, err = c.Authenticate(r)
	require.NoError(t, err)
	require.Nil(t, a)
	r = Request{Fields: map[string]string{"AccessKey": "trusted", "Signature": "x"}, Remote: netip.MustParseAddr("192.168.1.20")}
	_, err = c.Authenticate(r)
	require.NoError(t, err)
	r.Remote = netip.MustParseAddr("192.168.2.20")
	_, err = c.Authenticate(r)
	require.ErrorIs(t, err, ErrSignature)
}

func TestAuthorize(t *testing.T) {
	c, err := Parse([]byte(sample))
	require.NoError(t, err)
	user, admin := c.Accounts["RocketMQ"], c.Accounts["opsadmin"]
	for _, tc := range []struct {
		name string
		acct *Account
		need Need
		ok   bool
	}{
		{"pub on a PUB|SUB topic", user, Need{Topics: map[string]Perm{"orders": Pub}}, true},
		{"sub on a PUB-only topic", user, Need{Topics: map[string]Perm{"audit": Sub}}, false},
		{"denied topic", user, Need{Topics: map[string]Perm{"secret": Pub}}, false},
		{"default topic perm DENY", user, Need{Topics: map[string]Perm{"other": Sub}}, false},
		{"default group perm SUB", user, Need{Groups: map[string]Perm{"cg": Sub}}, true},
		{"denied group", user, Need{Groups: map[string]Perm{"blocked": Sub}}, false},
		{"admin request by a user", user, Need{Admin: true}, false},
		{"admin request by an admin", admin, Need{Admin: true}, true},
		{"admin may do anything", admin, Need{Topics: map[string]Perm{"secret": Pub}}, true},
	} {
		err := c.Authorize(tc.acct, tc.need)
		if tc.ok {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, ErrDenied, tc.name)
		}
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ yaml, msg string }{
		{"accounts:\n  - accessKey: ab\n    secretKey: 12345678\n", "at least 6"},
		{"accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n    defaultTopicPerm: WRITE\n", "defaultTopicPerm"},
		{"accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n    topicPerms: [orders]\n", "topicPerms entry \"orders\""},
		{"accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n  - accessKey: abcdefg\n    secretKey: 12345678\n", "appears twice"},
		{"globalWhiteRemoteAddresses: [not-an-ip]\n", "globalWhiteRemoteAddresses"},
		{"accounts: {", "bad configuration"},
	} {
		_, err := Parse([]byte(tc.yaml))
		require.ErrorIs(t, err, ErrConfig, tc.yaml)
		require.ErrorContains(t, err, tc.msg, tc.yaml)
	}
}
