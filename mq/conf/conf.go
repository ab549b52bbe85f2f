// Package conf reads configuration in Apache RocketMQ's Java properties
// format and binds it to tagged struct fields, so every daemon refuses an
// unknown key or a bad value at start with a message naming both.
//
// Supported syntax: "key=value", "key:value" and "key value"; blank lines;
// comment lines starting with # or !; a trailing backslash continues a line;
// the escapes \t \n \r \f \\ and \uXXXX.
package conf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Entry is one key of a properties file.
type Entry struct {
	Key, Value string
	Line       int
}

// Props is a parsed properties file, in file order.
type Props struct {
	Source  string
	Entries []Entry
}

// Get returns the value of key.
func (p Props) Get(key string) (string, bool) {
	for i := len(p.Entries) - 1; i >= 0; i-- {
		if p.Entries[i].Key == key {
			return p.Entries[i].Value, true
		}
	}
	return "", false
}

// Set adds or replaces key (for command-line overrides).
func (p *Props) Set(key, value string) {
	p.Entries = append(p.Entries, Entry{Key: key, Value: value})
}

// Load reads a properties file.
func Load(path string) (Props, error) {
	f, err := os.Open(path)
	if err != nil {
		return Props{}, fmt.Errorf("conf: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads properties from r; source names it in errors.
func Parse(source string, r io.Reader) (Props, error) {
	p := Props{Source: source}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var pending strings.Builder
	start, line := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimLeft(sc.Text(), " \t\f")
		if pending.Len() == 0 {
			if text == "" || text[0] == '#' || text[0] == '!' {
				continue
			}
			start = line
		}
		if continues(text) {
			pending.WriteString(text[:len(text)-1])
			continue
		}
		pending.WriteString(text)
		e, err := parseLine(pending.String())
		if err != nil {
			return p, fmt.Errorf("conf: %s:%d: %w", source, start, err)
		}
		e.Line = start
		p.Entries = append(p.Entries, e)
		pending.Reset()
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("conf: %s: %w", source, err)
	}
	if pending.Len() > 0 {
		e, err := parseLine(pending.String())
		if err != nil {
			return p, fmt.Errorf("conf: %s:%d: %w", source, start, err)
		}
		e.Line = start
		p.Entries = append(p.Entries, e)
	}
	return p, nil
}

// continues reports whether a line ends with an odd number of backslashes.
func continues(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func parseLine(s string) (Entry, error) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		i++
	}
	key := s[:min(i, len(s))]
	rest := strings.TrimLeft(s[min(i, len(s)):], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	k, err := unescape(key)
	if err != nil {
		return Entry{}, err
	}
	v, err := unescape(strings.TrimRight(rest, " \t\f\r"))
	if err != nil {
		return Entry{}, err
	}
	if k == "" {
		return Entry{}, errors.New("empty key")
	}
	return Entry{Key: k, Value: v}, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+4 >= len(s) {
				return "", fmt.Errorf("bad \\u escape in %q", s)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
			if err != nil {
				return "", fmt.Errorf("bad \\u escape in %q", s)
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// Bind sets the fields of the struct dst points to from p. A field is bound
// to the key in its `conf:"name"` tag; `conf:"name,ms"` reads a time.Duration
// as milliseconds, `conf:"name,s"` as seconds. A key no field names is an
// error, and so is a value that does not parse; both errors name the key,
// the value and the line.
func Bind(p Props, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("conf: Bind needs a pointer to a struct")
	}
	fields := fieldsByKey(v.Elem())
	var errs []error
	for _, e := range p.Entries {
		f, ok := fields[e.Key]
		if !ok {
			errs = append(errs, fmt.Errorf("conf: %s:%d: unknown key %q (value %q)", p.Source, e.Line, e.Key, e.Value))
			continue
		}
		if err := set(f.v, f.unit, e.Value); err != nil {
			errs = append(errs, fmt.Errorf("conf: %s:%d: %s=%q: %w", p.Source, e.Line, e.Key, e.Value, err))
		}
	}
	return errors.Join(errs...)
}

type boundField struct {
	v    reflect.Value
	unit string
}

func fieldsByKey(v reflect.Value) map[string]boundField {
	out := make(map[string]boundField)
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("conf")
		if tag == "" || tag == "-" {
			if sf.Anonymous && v.Field(i).Kind() == reflect.Struct {
				for k, f := range fieldsByKey(v.Field(i)) {
					out[k] = f
				}
			}
			continue
		}
		name, unit, _ := strings.Cut(tag, ",")
		out[name] = boundField{v: v.Field(i), unit: unit}
	}
	return out
}

// Keys returns the keys dst's struct type accepts.
func Keys(dst any) []string {
	fs := fieldsByKey(reflect.ValueOf(dst).Elem())
	out := make([]string, 0, len(fs))
	for k := range fs {
		out = append(out, k)
	}
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

func set(f reflect.Value, unit, s string) error {
	s = strings.TrimSpace(s)
	if f.Type() == durationType {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer number of %s", unitName(unit))
		}
		mult := time.Millisecond
		if unit == "s" {
			mult = time.Second
		} else if unit == "h" {
			mult = time.Hour
		}
		f.SetInt(n * int64(mult))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer of %d bits", f.Type().Bits())
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("want a number")
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}

func unitName(u string) string {
	switch u {
	case "s":
		return "seconds"
	case "h":
		return "hours"
	}
	return "milliseconds"
}
