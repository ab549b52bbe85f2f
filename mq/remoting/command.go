package remoting

import (
	"errors"
	"fmt"
	"strconv"
)

// Language and version this side announces in the commands it creates.
const (
	LanguageGo = "GO"
	// Version is the MQVersion ordinal we announce (V4_9_4 + a few: any
	// non-negative value satisfies the Go client).
	Version = 401
)

// ErrMissingField is wrapped by the typed getters of Fields when a required
// header field is absent.
var ErrMissingField = errors.New("remoting: missing header field")

// ErrBadField is wrapped by the typed getters of Fields when a header field
// does not parse.
var ErrBadField = errors.New("remoting: bad header field")

// Field is one extFields entry.
type Field struct {
	Key, Value string
}

// Fields is the extFields map of a command, kept as a small slice: headers
// hold a dozen entries at most, and a slice costs one allocation where a map
// costs several.
type Fields []Field

// Get returns the value of key and whether it is present.
func (f Fields) Get(key string) (string, bool) {
	for i := range f {
		if f[i].Key == key {
			return f[i].Value, true
		}
	}
	return "", false
}

// Str returns the value of key, or "" when it is absent.
func (f Fields) Str(key string) string {
	v, _ := f.Get(key)
	return v
}

// Set replaces or adds key.
func (f *Fields) Set(key, value string) {
	for i := range *f {
		if (*f)[i].Key == key {
			(*f)[i].Value = value
			return
		}
	}
	*f = append(*f, Field{key, value})
}

// SetInt sets key to the decimal form of v.
func (f *Fields) SetInt(key string, v int64) { f.Set(key, strconv.FormatInt(v, 10)) }

// Int64 parses the required field key.
func (f Fields) Int64(key string) (int64, error) {
	v, ok := f.Get(key)
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrMissingField, key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q", ErrBadField, key, v)
	}
	return n, nil
}

// Int32 parses the required field key.
func (f Fields) Int32(key string) (int32, error) {
	n, err := f.Int64(key)
	if err != nil {
		return 0, err
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, fmt.Errorf("%w: %s=%d out of range", ErrBadField, key, n)
	}
	return int32(n), nil
}

// Int64Or parses the optional field key, returning def when it is absent
// or empty.
func (f Fields) Int64Or(key string, def int64) (int64, error) {
	if v, ok := f.Get(key); !ok || v == "" {
		return def, nil
	}
	return f.Int64(key)
}

// Bool parses the optional boolean field key ("true"/"false"), returning
// def when it is absent.
func (f Fields) Bool(key string, def bool) bool {
	v, ok := f.Get(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def
	}
	return b
}

// Required returns the value of key or an error naming it.
func (f Fields) Required(key string) (string, error) {
	v, ok := f.Get(key)
	if !ok || v == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingField, key)
	}
	return v, nil
}

// Command is a remoting request or response.
type Command struct {
	Code      int32
	Language  string
	Version   int32
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields Fields
	Body      []byte

	// Serialize is the header encoding this command arrived in, and the one
	// its response is written in (SerializeJSON or SerializeRocketMQ).
	Serialize byte

	frame *[]byte // pooled buffer holding the body; see Release
}

// NewRequest returns a request with code; the opaque is set when it is sent.
func NewRequest(code int32, fields Fields, body []byte) *Command {
	return &Command{Code: code, Language: LanguageGo, Version: Version, ExtFields: fields, Body: body}
}

// IsResponse reports whether c is a response.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the sender marked c as oneway. The Go client never
// does, so servers answer every request anyway.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// Response returns a response to c with the given code and remark.
func (c *Command) Response(code int32, remark string) *Command {
	r := new(Command)
	c.ResponseTo(r, code, remark)
	return r
}

// ResponseTo makes r a response to c, as Response does, in place (a hot
// path keeps r inside a larger allocation).
func (c *Command) ResponseTo(r *Command, code int32, remark string) {
	*r = Command{
		Code:      code,
		Language:  LanguageGo,
		Version:   Version,
		Opaque:    c.Opaque,
		Flag:      FlagResponse,
		Remark:    remark,
		Serialize: c.Serialize,
	}
}

// Errorf returns a response to c with code and a formatted remark.
func (c *Command) Errorf(code int32, format string, args ...any) *Command {
	return c.Response(code, fmt.Sprintf(format, args...))
}

// String describes c for logs.
func (c *Command) String() string {
	kind := "request"
	if c.IsResponse() {
		kind = "response"
	}
	return fmt.Sprintf("%s code=%d opaque=%d remark=%q fields=%v body=%dB", kind, c.Code, c.Opaque, c.Remark, c.ExtFields, len(c.Body))
}

// Error is a non-success response turned into a Go error.
type Error struct {
	Code   int32
	Remark string
}

func (e *Error) Error() string { return fmt.Sprintf("remoting: code %d: %s", e.Code, e.Remark) }

// AsError returns nil when c is a success response and an *Error otherwise.
func (c *Command) AsError() error {
	if c.Code == Success {
		return nil
	}
	return &Error{Code: c.Code, Remark: c.Remark}
}
