package remoting

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, ser := range []byte{SerializeJSON, SerializeRocketMQ} {
		c := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 3, ExtFields: Fields{{"topic", "T"}},
			Body: []byte("hello"), Serialize: ser}
		raw := AppendFrame(nil, c)
		require.Equal(t, uint32(len(raw)-4), binary.BigEndian.Uint32(raw))
		require.Equal(t, ser, raw[4])
		back, err := ReadFrame(bytes.NewReader(raw), 0)
		require.NoError(t, err)
		require.NotNil(t, back.frame, "the body lives in a pooled frame buffer")
		back.frame = nil
		require.Equal(t, c, back)
	}
}

func TestFrameReadErrors(t *testing.T) {
	good := AppendFrame(nil, &Command{Code: 1, Body: []byte("x")})
	tests := []struct {
		name string
		raw  []byte
		max  int
		is   error
	}{
		{"empty", nil, 0, io.EOF},
		{"short length", good[:2], 0, io.ErrUnexpectedEOF},
		{"short body", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
		{"too large", binary.BigEndian.AppendUint32(nil, DefaultMaxFrame+1), 0, ErrFrameTooLarge},
		{"over custom limit", good, 8, ErrFrameTooLarge},
		{"length below 4", []byte{0, 0, 0, 2, 0, 0}, 0, ErrBadFrame},
		{"header past end", []byte{0, 0, 0, 4, 0, 0, 0, 9}, 0, ErrBadFrame},
		{"unknown serialization", []byte{0, 0, 0, 6, 7, 0, 0, 2, '{', '}'}, 0, ErrBadFrame},
		{"bad json", []byte{0, 0, 0, 6, 0, 0, 0, 2, '{', '{'}, 0, ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.raw), tt.max)
			require.ErrorIs(t, err, tt.is)
		})
	}
}

func TestFrameBuffersAreReused(t *testing.T) {
	raw := AppendFrame(nil, &Command{Code: 1, Body: bytes.Repeat([]byte("b"), 700)})
	c, err := ReadFrame(bytes.NewReader(raw), 0)
	require.NoError(t, err)
	require.Equal(t, 1024, cap(*c.frame))
	c.Release()
	require.Nil(t, c.Body)
	c.Release() // idempotent
	for _, n := range []int{1, 511, 512, 513, 65536, 65537} {
		b := getFrameBuf(n)
		require.Len(t, *b, n)
		putFrameBuf(b)
	}
}

func TestFrameEmptyBodyIsNil(t *testing.T) {
	back, err := ReadFrame(bytes.NewReader(AppendFrame(nil, &Command{Code: 1})), 0)
	require.NoError(t, err)
	require.Nil(t, back.Body)
}
