package remoting

import (
	"encoding/binary"
	"math/bits"
)

// SWAR scanning: eight bytes per step, for the JSON codec's hot loops.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// specialMask has the high bit set in each byte of x that is a control
// character (< 0x20), a quote, a backslash or (when nonASCII) >= 0x80.
func specialMask(x uint64, nonASCII bool) uint64 {
	ctl := (x - 0x20*lo8) &^ x & hi8
	q := x ^ ('"' * lo8)
	quote := (q - lo8) &^ q & hi8
	bs := x ^ ('\\' * lo8)
	back := (bs - lo8) &^ bs & hi8
	m := ctl | quote | back
	if nonASCII {
		m |= x & hi8
	}
	return m
}

// plainPrefix returns how many leading bytes of s need no JSON attention:
// no control character, quote or backslash, and (when nonASCII) no byte
// of a multi-byte sequence.
func plainPrefix(s string, nonASCII bool) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		if m := specialMask(x, nonASCII); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; jsonSpecial[c] || (nonASCII && c >= 0x80) {
			return i
		}
	}
	return len(s)
}

// jsonSpecial marks the bytes that end a plain run in a JSON string: a
// quote, a backslash or a control character.
var jsonSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()
