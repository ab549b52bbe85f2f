package message

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sample() Message {
	return Message{
		Topic: "TopicOrderPaySuccess", QueueID: 3, Flag: 7, QueueOffset: 42, PhysicalOffset: 123456,
		SysFlag: FlagCompressed, BornTimestamp: 1700000000000, BornHost: netip.MustParseAddrPort("10.0.0.5:54321"),
		StoreTimestamp: 1700000000123, StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
		ReconsumeTimes: 2, PreparedTransactionOffset: 9, Body: []byte("hello body"),
		Properties: "TAGS\x01TagA\x02KEYS\x01k1 k2\x02",
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Message)
		size int
	}{
		{"ipv4", func(*Message) {}, 91 + 10 + 20 + 21},
		{"empty body and properties", func(m *Message) { m.Body = []byte{}; m.Properties = "" }, 91 + 20},
		{"ipv6 born host", func(m *Message) { m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:9") }, 91 + 10 + 20 + 21 + 12},
		{"ipv4-mapped born host is stored as ipv4", func(m *Message) { m.BornHost = netip.MustParseAddrPort("[::ffff:10.0.0.5]:54321") }, 91 + 10 + 20 + 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sample()
			tt.mod(&m)
			require.NoError(t, m.Validate())
			raw := AppendRecord(nil, &m)
			require.Len(t, raw, tt.size)
			require.Equal(t, tt.size, m.EncodedSize())
			back, n, err := DecodeRecord(append(raw, 0xAA, 0xBB))
			require.NoError(t, err)
			require.Equal(t, len(raw), n)
			require.Equal(t, m.Topic, back.Topic)
			require.Equal(t, m.Body, back.Body)
			require.Equal(t, m.Properties, back.Properties)
			require.Equal(t, m.QueueOffset, back.QueueOffset)
			require.Equal(t, m.PhysicalOffset, back.PhysicalOffset)
			require.Equal(t, m.BornHost.Addr().Unmap(), back.BornHost.Addr().Unmap())
			require.Equal(t, m.StoreHost, back.StoreHost)
			require.Equal(t, BodyChecksum(m.Body), back.BodyCRC)
			require.Equal(t, int32(len(raw)), back.StoreSize)
		})
	}
}

func TestDecodeRecordRejectsDamage(t *testing.T) {
	m := sample()
	raw := AppendRecord(nil, &m)
	for n := range len(raw) {
		_, _, err := DecodeRecord(raw[:n])
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
	bad := append([]byte(nil), raw...)
	bad[OffMagic] ^= 1
	_, _, err := DecodeRecord(bad)
	require.ErrorIs(t, err, ErrCorrupt)

	bad = append([]byte(nil), raw...)
	bad[3]++ // total size one larger than the fields
	_, _, err = DecodeRecord(append(bad, 0))
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestValidateLimits(t *testing.T) {
	m := sample()
	m.Topic = strings.Repeat("t", MaxTopicLen+1)
	require.Error(t, m.Validate())
	m = sample()
	m.Properties = strings.Repeat("p", MaxPropertiesLen+1)
	require.Error(t, m.Validate())
	m = sample()
	m.Topic = ""
	require.Error(t, m.Validate())
}

func TestOffsetMsgID(t *testing.T) {
	host := netip.MustParseAddrPort("127.0.0.1:10911")
	id := OffsetMsgID(host, 123456)
	require.Equal(t, "7F00000100002A9F000000000001E240", id)
	h, off, err := ParseOffsetMsgID(id)
	require.NoError(t, err)
	require.Equal(t, host, h)
	require.Equal(t, int64(123456), off)

	v6 := netip.MustParseAddrPort("[2001:db8::1]:10911")
	id6 := OffsetMsgID(v6, 7)
	require.Len(t, id6, 56)
	h, off, err = ParseOffsetMsgID(id6)
	require.NoError(t, err)
	require.Equal(t, v6, h)
	require.Equal(t, int64(7), off)

	for _, bad := range []string{"", "7F", strings.Repeat("Z", 32)} {
		_, _, err := ParseOffsetMsgID(bad)
		require.Error(t, err, bad)
	}
}

func TestTagsCodeMatchesJavaHashCode(t *testing.T) {
	tests := map[string]int64{"": 0, "TagA": 2598919, "tagA": 3552231, "order_tag": -391241943, "é": 233, "😀": 1772899}
	for tag, want := range tests {
		require.Equal(t, want, TagsCode(tag), tag)
	}
}

func TestProperties(t *testing.T) {
	s := EncodeProperties(map[string]string{"TAGS": "A", "KEYS": "k1 k2", "EMPTY": ""})
	require.Equal(t, "EMPTY\x01\x02KEYS\x01k1 k2\x02TAGS\x01A\x02", s)
	v, ok := Property(s, "KEYS")
	require.True(t, ok)
	require.Equal(t, "k1 k2", v)
	_, ok = Property(s, "NOPE")
	require.False(t, ok)
	require.Equal(t, []string{"k1", "k2"}, Keys(v))

	s = SetProperty(s, "TAGS", "B")
	v, _ = Property(s, "TAGS")
	require.Equal(t, "B", v)
	s = DeleteProperty(s, "KEYS")
	require.Equal(t, map[string]string{"EMPTY": "", "TAGS": "B"}, ParseProperties(s))
	require.Equal(t, map[string]string{"a": "b"}, ParseProperties("a\x01b\x02junk\x02\x01novalue\x02"))
}

func TestBatchRoundTrip(t *testing.T) {
	items := []BatchItem{{Flag: 1, Body: []byte("one"), Properties: "TAGS\x01A\x02"}, {Body: []byte{}, Properties: ""}}
	var raw []byte
	for _, it := range items {
		raw = AppendBatchItem(raw, it)
	}
	back, err := DecodeBatch(raw)
	require.NoError(t, err)
	require.Equal(t, items, back)

	for n := 1; n < len(raw); n++ {
		if n == 20+3+2+len("TAGS\x01A\x02") {
			continue // a clean boundary between items is a valid shorter batch
		}
		_, err := DecodeBatch(raw[:n])
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
	_, err = DecodeBatch(nil)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestUniqIDGenerator(t *testing.T) {
	g := NewUniqIDGenerator(netip.MustParseAddr("192.168.1.2"))
	now := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	a, b := g.Next(now), g.Next(now)
	require.Len(t, a, 32)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "C0A80102"))
	require.Equal(t, strings.ToUpper(a), a)
}

func TestZeroHostsEncodeAsZeros(t *testing.T) {
	m := Message{Topic: "T", Body: []byte("b")}
	raw := AppendRecord(nil, &m)
	back, _, err := DecodeRecord(raw)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:0", back.StoreHost.String())
	require.Equal(t, "00000000000000000000000000000007", OffsetMsgID(netip.AddrPort{}, 7))
}

func TestScanKnown(t *testing.T) {
	props := EncodeProperties(map[string]string{"TAGS": "A", "KEYS": "k1 k2", "UNIQ_KEY": "U", "DELAY": "3", "TRAN_MSG": "true", "CLUSTER": "C", "X": "y"})
	k := ScanKnown(props)
	require.Equal(t, Known[string]{Tags: "A", Keys: "k1 k2", UniqKey: "U", Delay: "3", TranMsg: "true", Cluster: "C", HasUniqKey: true, HasCluster: true}, k)
	kb := ScanKnown([]byte(props))
	require.Equal(t, "A", string(kb.Tags))
	require.False(t, ScanKnown("TAGS\x01A\x02").HasUniqKey)
}
