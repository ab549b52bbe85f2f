package remoting

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader: it must never
// panic, and whatever decodes must encode back to a frame that decodes to
// the same command.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, &Command{Code: 10, Opaque: 1, ExtFields: Fields{{"topic", "T"}}, Body: []byte("b")}))
	f.Add(AppendFrame(nil, &Command{Code: 11, Serialize: SerializeRocketMQ, ExtFields: Fields{{"a", "b"}}}))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadFrame(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !isFrameError(err) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := ReadFrame(bytes.NewReader(AppendFrame(nil, c)), 1<<20)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if again.Code != c.Code || again.Opaque != c.Opaque || again.Flag != c.Flag || !bytes.Equal(again.Body, c.Body) || len(again.ExtFields) != len(c.ExtFields) {
			t.Fatalf("round trip changed the command: %v vs %v", c, again)
		}
	})
}

func isFrameError(err error) bool {
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, ErrFrameTooLarge, ErrBadFrame, ErrBadHeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzDecodeJSONHeader checks the JSON header parser on arbitrary text: no
// panics, and a decoded header survives an encode/decode round trip.
func FuzzDecodeJSONHeader(f *testing.F) {
	f.Add([]byte(`{"code":34,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{}}`))
	f.Add([]byte(`{"code":0,"extFields":{"a":1,"b":"\u0001"},"x":[{"y":null}]}`))
	f.Add([]byte(`{"remark":"\ud83d\ude00\\","code":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Command
		if err := decodeJSONHeader(data, &c); err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error does not wrap ErrBadHeader: %v", err)
			}
			return
		}
		var back Command
		if err := decodeJSONHeader(appendJSONHeader(nil, &c), &back); err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if back.Code != c.Code || back.Opaque != c.Opaque || len(back.ExtFields) != len(c.ExtFields) {
			t.Fatalf("round trip changed the header: %+v vs %+v", c, back)
		}
	})
}

// FuzzJSONHeaderFastPath checks the one-pass decoder against the general
// parser: whatever it accepts, the general parser accepts and decodes to
// the same header.
func FuzzJSONHeaderFastPath(f *testing.F) {
	f.Add([]byte(`{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"topic":"T","properties":"UNIQ_KEY\u0001A\u0002"}}`))
	f.Add([]byte(`{"code":-2147483648,"extFields":null,"remark":null,"serializeTypeCurrentRPC":"JSON","x":true,"y":-1}`))
	f.Add([]byte(`{"code":2147483648,"extFields":{"a":1}}`))
	f.Add([]byte(`{"opaque":1e3,"flag":01,"remark":"\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Command
		fh := fastHeader{s: string(data)}
		if !fh.decode(&fast) {
			return
		}
		p := jsonParser{data: string(data)}
		var slow Command
		err := p.object(func(key string) error { return p.headerField(key, &slow) })
		p.skipSpace()
		if err != nil || p.pos != len(p.data) {
			t.Fatalf("fast path accepted %q, the general parser refuses it: %v", data, err)
		}
		require.Equal(t, slow, fast)
	})
}

// FuzzJSONStringMatchesStdlib checks string unescaping against
// encoding/json: a remark literal that the standard library decodes must
// decode to the same text here, and one it refuses must be refused.
func FuzzJSONStringMatchesStdlib(f *testing.F) {
	f.Add([]byte(`UNIQ_KEY\u0001C0A8\u0002TAGS\u0001TagA\u0002`))
	f.Add([]byte(`a\"b\\c\/d\b\f\n\r\t`))
	f.Add([]byte(`\ud83d\ude00 \ud83d x \u00e9\u4e2d`))
	f.Add([]byte(`bad \x escape`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !utf8.Valid(raw) {
			return // the standard library replaces invalid bytes; we keep them
		}
		lit := append(append([]byte{'"'}, raw...), '"')
		var want string
		stdErr := json.Unmarshal(lit, &want)
		header := append(append([]byte(`{"remark":`), lit...), '}')
		var c Command
		err := decodeJSONHeader(header, &c)
		if stdErr != nil {
			require.Error(t, err, "accepted %q, which encoding/json refuses: %v", lit, stdErr)
			return
		}
		require.NoError(t, err, "refused %q", lit)
		require.Equal(t, want, c.Remark)
	})
}
