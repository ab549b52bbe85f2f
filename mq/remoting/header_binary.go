package remoting

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Language codes of the ROCKETMQ binary header.
var languageCodes = []string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS"}

func languageCode(name string) byte {
	for i, n := range languageCodes {
		if n == name {
			return byte(i)
		}
	}
	return 9 // GO
}

func languageName(code byte) string {
	if int(code) < len(languageCodes) {
		return languageCodes[code]
	}
	return "OTHER"
}

// binaryHeaderFixed is the size of the fixed part of a binary header.
const binaryHeaderFixed = 2 + 1 + 2 + 4 + 4 + 4 + 4

// appendBinaryHeader appends the ROCKETMQ binary header of c to dst.
func appendBinaryHeader(dst []byte, c *Command) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Code)))
	dst = append(dst, languageCode(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Version)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	size := 0
	for _, f := range c.ExtFields {
		size += 2 + len(f.Key) + 4 + len(f.Value)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	for _, f := range c.ExtFields {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Key)))
		dst = append(dst, f.Key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Value)))
		dst = append(dst, f.Value...)
	}
	return dst
}

// decodeBinaryHeader parses a ROCKETMQ binary header into c.
func decodeBinaryHeader(b []byte, c *Command) error {
	if len(b) < binaryHeaderFixed {
		return fmt.Errorf("%w: binary header of %d bytes", ErrBadHeader, len(b))
	}
	c.Code = int32(int16(binary.BigEndian.Uint16(b)))
	c.Language = languageName(b[2])
	c.Version = int32(int16(binary.BigEndian.Uint16(b[3:])))
	c.Opaque = int32(binary.BigEndian.Uint32(b[5:]))
	c.Flag = int32(binary.BigEndian.Uint32(b[9:]))
	rest := b[13:]
	remark, rest, err := lengthPrefixed(rest, 4)
	if err != nil {
		return fmt.Errorf("remark: %w", err)
	}
	c.Remark = string(remark)
	block, rest, err := lengthPrefixed(rest, 4)
	if err != nil {
		return fmt.Errorf("extFields: %w", err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after binary header", ErrBadHeader, len(rest))
	}
	for len(block) > 0 {
		var k, v []byte
		if k, block, err = lengthPrefixed(block, 2); err != nil {
			return fmt.Errorf("extFields key: %w", err)
		}
		if v, block, err = lengthPrefixed(block, 4); err != nil {
			return fmt.Errorf("extFields value: %w", err)
		}
		c.ExtFields = append(c.ExtFields, Field{string(k), string(v)})
	}
	return nil
}

// lengthPrefixed splits a field with a big-endian length of width 2 or 4
// bytes off the front of b.
func lengthPrefixed(b []byte, width int) (field, rest []byte, err error) {
	if len(b) < width {
		return nil, nil, fmt.Errorf("%w: truncated length", ErrBadHeader)
	}
	var n uint64
	if width == 2 {
		n = uint64(binary.BigEndian.Uint16(b))
	} else {
		n = uint64(binary.BigEndian.Uint32(b))
	}
	b = b[width:]
	if n > math.MaxInt32 || n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: length %d exceeds %d remaining bytes", ErrBadHeader, n, len(b))
	}
	return b[:n], b[n:], nil
}
