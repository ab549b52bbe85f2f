package remoting

import "math"

// fastHeader decodes, in one pass and without reporting errors, the compact
// JSON headers that Go and Java peers write: no whitespace, string
// extFields values, and unknown top-level fields whose values are scalars.
// It returns false on anything else (including every malformed header);
// the general parser then decodes the header or says what is wrong with
// it. Where it returns true, the result is the general parser's
// (FuzzJSONHeaderFastPath checks that).
type fastHeader struct {
	s string
	i int
}

func (f *fastHeader) decode(c *Command) bool {
	if !f.eat('{') {
		return false
	}
	if f.eat('}') {
		return f.i == len(f.s)
	}
	for {
		key, ok := f.str()
		if !ok || !f.eat(':') || !f.field(key, c) {
			return false
		}
		if f.eat(',') {
			continue
		}
		return f.eat('}') && f.i == len(f.s)
	}
}

func (f *fastHeader) field(key string, c *Command) bool {
	var ok bool
	if n := intField(c, key); n != nil {
		*n, ok = f.int32()
		return ok
	}
	switch key {
	case "language":
		c.Language, ok = f.str()
	case "remark":
		if f.literal("null") {
			c.Remark, ok = "", true
		} else {
			c.Remark, ok = f.str()
		}
	case "extFields":
		ok = f.extFields(c)
	default:
		ok = f.skipScalar()
	}
	return ok
}

func (f *fastHeader) extFields(c *Command) bool {
	if f.literal("null") {
		return true
	}
	if !f.eat('{') {
		return false
	}
	// Gather the fields on the stack, then keep them in a slice of their
	// exact size (a send request has 13, its response 6).
	var local [24]Field
	fields := Fields(local[:0])
	if !f.eat('}') {
		for {
			k, ok := f.str()
			if !ok || !f.eat(':') {
				return false
			}
			v, ok := f.str()
			if !ok {
				return false
			}
			fields = append(fields, Field{k, v})
			if f.eat(',') {
				continue
			}
			if !f.eat('}') {
				return false
			}
			break
		}
	}
	c.ExtFields = append(c.ExtFields[:len(c.ExtFields):len(c.ExtFields)], fields...)
	if c.ExtFields == nil {
		c.ExtFields = Fields{}
	}
	return true
}

func (f *fastHeader) eat(b byte) bool {
	if f.i < len(f.s) && f.s[f.i] == b {
		f.i++
		return true
	}
	return false
}

func (f *fastHeader) literal(lit string) bool {
	if len(f.s)-f.i >= len(lit) && f.s[f.i:f.i+len(lit)] == lit {
		f.i += len(lit)
		return true
	}
	return false
}

// str reads a string literal: a substring of the header when it has no
// escapes.
func (f *fastHeader) str() (string, bool) {
	if !f.eat('"') {
		return "", false
	}
	start := f.i
	// Header strings are short: a byte loop beats word-at-a-time scanning.
	j := start
	for j < len(f.s) && !jsonSpecial[f.s[j]] {
		j++
	}
	if j >= len(f.s) {
		return "", false
	}
	switch f.s[j] {
	case '"':
		f.i = j + 1
		return f.s[start:j], true
	case '\\':
		p := jsonParser{data: f.s, pos: j}
		v, err := p.unescape(start)
		if err != nil {
			return "", false
		}
		f.i = p.pos
		return v, true
	}
	return "", false // a control character
}

// int32 reads an integer without fraction or exponent that fits in 32 bits.
func (f *fastHeader) int32() (int32, bool) {
	neg := f.eat('-')
	start := f.i
	var v int64
	for f.i < len(f.s) && f.s[f.i] >= '0' && f.s[f.i] <= '9' {
		v = v*10 + int64(f.s[f.i]-'0')
		if v > math.MaxInt32+1 {
			return 0, false
		}
		f.i++
	}
	if f.i == start || (f.i < len(f.s) && isNumberTail(f.s[f.i])) {
		return 0, false
	}
	if neg {
		v = -v
	}
	if v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

func isNumberTail(b byte) bool {
	return b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-'
}

// skipScalar skips an unknown field's string, number, boolean or null.
func (f *fastHeader) skipScalar() bool {
	if f.i >= len(f.s) {
		return false
	}
	switch b := f.s[f.i]; {
	case b == '"':
		_, ok := f.str()
		return ok
	case b == 't':
		return f.literal("true")
	case b == 'f':
		return f.literal("false")
	case b == 'n':
		return f.literal("null")
	case b == '-' || (b >= '0' && b <= '9'):
		f.eat('-')
		start := f.i
		for f.i < len(f.s) && f.s[f.i] >= '0' && f.s[f.i] <= '9' {
			f.i++
		}
		return f.i > start && (f.i >= len(f.s) || !isNumberTail(f.s[f.i]))
	}
	return false
}
