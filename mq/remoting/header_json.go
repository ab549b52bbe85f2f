package remoting

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadHeader is wrapped by every header decoding error.
var ErrBadHeader = errors.New("remoting: malformed header")

// appendJSONHeader appends the JSON header of c to dst, in the field order the
// Go client emits. Every extFields value is written as a JSON string.
func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	lang := c.Language
	if lang == "" {
		lang = LanguageGo
	}
	dst = appendJSONString(dst, lang)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	dst = append(dst, `,"extFields":{`...)
	for i, f := range c.ExtFields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		dst = appendJSONString(dst, f.Value)
	}
	return append(dst, "}}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	n := plainPrefix(s, true)
	if n == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i := n; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if !jsonSpecial[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeJSONHeader parses a JSON header into c. It accepts what Java and Go
// peers emit: unknown fields are skipped, remark and extFields may be null,
// and non-string extFields values are kept as their JSON text.
//
// The header is converted to one string up front; keys and values without
// escapes are substrings of it, so a typical header costs a handful of
// allocations.
func decodeJSONHeader(data []byte, c *Command) error {
	s := string(data)
	f := fastHeader{s: s}
	if f.decode(c) {
		return nil
	}
	*c = Command{Serialize: c.Serialize}
	p := jsonParser{data: s}
	if err := p.object(func(key string) error { return p.headerField(key, c) }); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return p.errorf("trailing data")
	}
	return nil
}

type jsonParser struct {
	data string
	pos  int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: json at byte %d: %s", ErrBadHeader, p.pos, fmt.Sprintf(format, args...))
}

// intField is the field of c an integer header key sets, or nil.
func intField(c *Command, key string) *int32 {
	switch key {
	case "code":
		return &c.Code
	case "version":
		return &c.Version
	case "opaque":
		return &c.Opaque
	case "flag":
		return &c.Flag
	}
	return nil
}

func (p *jsonParser) headerField(key string, c *Command) error {
	var err error
	if n := intField(c, key); n != nil {
		*n, err = p.int32()
		return err
	}
	switch key {
	case "language":
		c.Language, err = p.scalarText()
	case "remark":
		c.Remark, err = p.nullableString()
	case "extFields":
		err = p.extFields(c)
	default:
		err = p.skipValue(0)
	}
	return err
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) peek() (byte, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return 0, p.errorf("unexpected end")
	}
	return p.data[p.pos], nil
}

func (p *jsonParser) expect(b byte) error {
	c, err := p.peek()
	if err != nil {
		return err
	}
	if c != b {
		return p.errorf("want %q, have %q", b, c)
	}
	p.pos++
	return nil
}

// object parses {"k":v,...}, calling field with each key positioned at its
// value; field must consume the value.
func (p *jsonParser) object(field func(key string) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	c, err := p.peek()
	if err != nil {
		return err
	}
	if c == '}' {
		p.pos++
		return nil
	}
	for {
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		c, err := p.peek()
		if err != nil {
			return err
		}
		p.pos++
		switch c {
		case ',':
		case '}':
			return nil
		default:
			p.pos--
			return p.errorf("want ',' or '}', have %q", c)
		}
	}
}

// extFieldsCap is the capacity given to a decoded extFields slice: the Go
// client's send header has 13 entries.
const extFieldsCap = 16

func (p *jsonParser) extFields(c *Command) error {
	ch, err := p.peek()
	if err != nil {
		return err
	}
	if ch == 'n' {
		return p.literal("null")
	}
	if c.ExtFields == nil {
		c.ExtFields = make(Fields, 0, extFieldsCap)
	}
	return p.object(func(key string) error {
		v, err := p.scalarText()
		if err != nil {
			return err
		}
		c.ExtFields = append(c.ExtFields, Field{key, v})
		return nil
	})
}

// nullableString parses a string or null ("").
func (p *jsonParser) nullableString() (string, error) {
	c, err := p.peek()
	if err != nil {
		return "", err
	}
	if c == 'n' {
		return "", p.literal("null")
	}
	return p.str()
}

// scalarText parses a string, number, boolean or null and returns its text
// (the unescaped string, or the literal; null gives "").
func (p *jsonParser) scalarText() (string, error) {
	c, err := p.peek()
	if err != nil {
		return "", err
	}
	switch {
	case c == '"':
		return p.str()
	case c == 'n':
		return "", p.literal("null")
	case c == 't':
		return "true", p.literal("true")
	case c == 'f':
		return "false", p.literal("false")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return "", p.errorf("want a scalar, have %q", c)
}

func (p *jsonParser) int32() (int32, error) {
	b, err := p.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(b, 10, 32)
	if err != nil {
		return 0, p.errorf("bad integer %q", b)
	}
	return int32(n), nil
}

func (p *jsonParser) literal(lit string) error {
	p.skipSpace()
	if len(p.data)-p.pos < len(lit) || p.data[p.pos:p.pos+len(lit)] != lit {
		return p.errorf("want %s", lit)
	}
	p.pos += len(lit)
	return nil
}

// number scans a JSON number and returns its text.
func (p *jsonParser) number() (string, error) {
	p.skipSpace()
	start := p.pos
	if p.pos < len(p.data) && p.data[p.pos] == '-' {
		p.pos++
	}
	digits := 0
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && p.pos > start) {
			if c >= '0' && c <= '9' {
				digits++
			}
			p.pos++
			continue
		}
		break
	}
	if digits == 0 {
		return "", p.errorf("bad number")
	}
	return p.data[start:p.pos], nil
}

// str parses a string literal; without escapes the result is a substring of
// the header.
func (p *jsonParser) str() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	start := p.pos
	p.pos += plainPrefix(p.data[p.pos:], false)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			p.pos++
			return p.data[start : p.pos-1], nil
		}
		if c == '\\' {
			return p.unescape(start)
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.pos++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) unescape(start int) (string, error) {
	// A Builder's String does not copy: one allocation per string.
	var out strings.Builder
	out.Grow(p.rawStringEnd() - start) // unescaping never lengthens a string
	out.WriteString(p.data[start:p.pos])
	for p.pos < len(p.data) {
		// Copy the run up to the next quote, backslash or control
		// character at once. Runs between escapes are short (property
		// names and values), where a byte loop beats word scanning.
		run := p.pos
		for p.pos < len(p.data) && !jsonSpecial[p.data[p.pos]] {
			p.pos++
		}
		out.WriteString(p.data[run:p.pos])
		if p.pos >= len(p.data) {
			break
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return out.String(), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		}
		if p.pos+1 >= len(p.data) {
			return "", p.errorf("unterminated escape")
		}
		e := p.data[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			out.WriteByte(e)
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, err := p.unicodeEscape()
			if err != nil {
				return "", err
			}
			out.WriteRune(r)
		default:
			return "", p.errorf("bad escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

// rawStringEnd returns the offset of the quote closing the string p is in
// (p.pos within it, not inside an escape), or the end of the data: the
// first quote after p.pos that an even number of backslashes precede.
func (p *jsonParser) rawStringEnd() int {
	for i := p.pos; i < len(p.data); {
		k := strings.IndexByte(p.data[i:], '"')
		if k < 0 {
			break
		}
		q := i + k
		escaped := false
		for j := q - 1; j >= p.pos && p.data[j] == '\\'; j-- {
			escaped = !escaped
		}
		if !escaped {
			return q
		}
		i = q + 1
	}
	return len(p.data)
}

// unicodeEscape decodes the XXXX of \uXXXX (already past "\u"), joining
// surrogate pairs.
func (p *jsonParser) unicodeEscape() (rune, error) {
	r, ok := p.hex4()
	if !ok {
		return 0, p.errorf("bad \\u escape")
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
		save := p.pos
		p.pos += 2
		if r2, ok := p.hex4(); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, nil
			}
		}
		p.pos = save
	}
	return utf8.RuneError, nil
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for i := range 4 {
		c := p.data[p.pos+i]
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// maxJSONDepth bounds nesting in skipped values, so a hostile header cannot
// exhaust the stack.
const maxJSONDepth = 64

// skipValue consumes any JSON value.
func (p *jsonParser) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nesting too deep")
	}
	c, err := p.peek()
	if err != nil {
		return err
	}
	switch c {
	case '{':
		return p.object(func(string) error { return p.skipValue(depth + 1) })
	case '[':
		return p.skipArray(depth)
	default:
		_, err := p.scalarText()
		return err
	}
}

func (p *jsonParser) skipArray(depth int) error {
	if err := p.expect('['); err != nil {
		return err
	}
	if c, err := p.peek(); err != nil {
		return err
	} else if c == ']' {
		p.pos++
		return nil
	}
	for {
		if err := p.skipValue(depth + 1); err != nil {
			return err
		}
		c, err := p.peek()
		if err != nil {
			return err
		}
		p.pos++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			p.pos--
			return p.errorf("want ',' or ']', have %q", c)
		}
	}
}
