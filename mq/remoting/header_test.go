package remoting

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaderJSONDecodesGoClientHeader(t *testing.T) {
	// Exactly as rocketmq-client-go v2.1.2 emits a send header.
	raw := `{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"producerGroup":"pg","topic":"T","defaultTopic":"TBW102","defaultTopicQueueNums":"4","queueId":"3","sysFlag":"0","bornTimestamp":"1700000000000","flag":"0","properties":"UNIQ_KEY\u0001ABC\u0002TAGS\u0001TagA\u0002","reconsumeTimes":"0","unitMode":"false","maxReconsumeTimes":"0","batch":"false"}}`
	var c Command
	require.NoError(t, decodeJSONHeader([]byte(raw), &c))
	require.Equal(t, int32(10), c.Code)
	require.Equal(t, "GO", c.Language)
	require.Equal(t, int32(317), c.Version)
	require.Equal(t, int32(12), c.Opaque)
	require.Equal(t, "UNIQ_KEY\x01ABC\x02TAGS\x01TagA\x02", c.ExtFields.Str("properties"))
	q, err := c.ExtFields.Int32("queueId")
	require.NoError(t, err)
	require.Equal(t, int32(3), q)
	require.Len(t, c.ExtFields, 13)
}

func TestHeaderJSONDecodeVariants(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		want   Command
		errSub string
	}{
		{name: "java response", raw: `{"code":0,"extFields":{"msgId":"X","queueId":"1"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":464}`,
			want: Command{Code: 0, Flag: 1, Language: "JAVA", Opaque: 7, Version: 464, ExtFields: Fields{{"msgId", "X"}, {"queueId", "1"}}}},
		{name: "null remark and fields", raw: `{"code":3,"remark":null,"extFields":null}`, want: Command{Code: 3}},
		{name: "numeric ext values", raw: `{"code":1,"extFields":{"a":12,"b":true,"c":null,"d":-1.5e3}}`,
			want: Command{Code: 1, ExtFields: Fields{{"a", "12"}, {"b", "true"}, {"c", ""}, {"d", "-1.5e3"}}}},
		{name: "unknown nested fields", raw: ` { "x" : [1, {"y": [true, null]}, "z"] , "code" : 5 } `, want: Command{Code: 5}},
		{name: "escapes", raw: `{"remark":"a\"b\\c\/d\n\u00e9\ud83d\ude00","code":1}`, want: Command{Code: 1, Remark: "a\"b\\c/d\né😀"}},
		{name: "truncated", raw: `{"code":1`, errSub: "unexpected end"},
		{name: "bad code", raw: `{"code":"x"}`, errSub: "bad number"},
		{name: "code overflow", raw: `{"code":99999999999}`, errSub: "bad integer"},
		{name: "trailing", raw: `{"code":1}x`, errSub: "trailing"},
		{name: "not object", raw: `[1]`, errSub: "want '{'"},
		{name: "object as ext value", raw: `{"extFields":{"a":{}}}`, errSub: "want a scalar"},
		{name: "raw control char", raw: "{\"remark\":\"a\x01\"}", errSub: "control character"},
		{name: "deep nesting", raw: `{"x":` + string(bytes.Repeat([]byte("["), 100)) + `}`, errSub: "nesting too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Command
			err := decodeJSONHeader([]byte(tt.raw), &c)
			if tt.errSub != "" {
				require.ErrorIs(t, err, ErrBadHeader)
				require.Contains(t, err.Error(), tt.errSub)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, c)
		})
	}
}

func TestHeaderJSONEncodeIsStandardJSONWithStringValues(t *testing.T) {
	c := &Command{Code: 0, Language: "GO", Version: 401, Opaque: 9, Flag: 1, Remark: "bad \"x\"\x01\xff",
		ExtFields: Fields{{"msgId", "7F000001"}, {"properties", "A\x01B\x02"}}}
	raw := appendJSONHeader(nil, c)
	var generic map[string]any
	require.NoError(t, json.Unmarshal(raw, &generic))
	ext := generic["extFields"].(map[string]any)
	for k, v := range ext {
		_, ok := v.(string)
		require.True(t, ok, "extFields[%s] must be a JSON string", k)
	}
	require.Equal(t, "A\x01B\x02", ext["properties"])
	require.Equal(t, "bad \"x\"\x01\ufffd", generic["remark"])

	var back Command
	require.NoError(t, decodeJSONHeader(raw, &back))
	require.Equal(t, c.ExtFields, back.ExtFields)
	require.Equal(t, c.Opaque, back.Opaque)
}

func TestHeaderBinaryRoundTrip(t *testing.T) {
	c := &Command{Code: 11, Language: "JAVA", Version: 464, Opaque: -5, Flag: 2, Remark: "r",
		ExtFields: Fields{{"topic", "T"}, {"queueId", "0"}}, Serialize: SerializeRocketMQ}
	raw := appendBinaryHeader(nil, c)
	var back Command
	require.NoError(t, decodeBinaryHeader(raw, &back))
	back.Serialize = SerializeRocketMQ
	require.Equal(t, *c, back)

	for n := range len(raw) {
		var cut Command
		require.ErrorIs(t, decodeBinaryHeader(raw[:n], &cut), ErrBadHeader, "truncated at %d", n)
	}
}
