package sql92

import (
	"math"
	"strconv"
	"strings"
)

// Props gives a message's property by name.
type Props func(name string) (string, bool)

// Match reports whether the properties satisfy the expression (unknown is
// not a match).
func (e *Expr) Match(props Props) bool { return e.root.eval(props) == triTrue }

// MatchMap is Match over a map.
func (e *Expr) MatchMap(m map[string]string) bool {
	return e.Match(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

type tri int8

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

type node interface{ eval(Props) tri }

type constNode bool

func (c constNode) eval(Props) tri { return triOf(bool(c)) }

type orNode struct{ l, r node }

func (n orNode) eval(p Props) tri {
	a := n.l.eval(p)
	if a == triTrue {
		return triTrue
	}
	b := n.r.eval(p)
	switch {
	case b == triTrue:
		return triTrue
	case a == triUnknown || b == triUnknown:
		return triUnknown
	}
	return triFalse
}

type andNode struct{ l, r node }

func (n andNode) eval(p Props) tri {
	a := n.l.eval(p)
	if a == triFalse {
		return triFalse
	}
	b := n.r.eval(p)
	switch {
	case b == triFalse:
		return triFalse
	case a == triUnknown || b == triUnknown:
		return triUnknown
	}
	return triTrue
}

type notNode struct{ n node }

func (n notNode) eval(p Props) tri {
	switch n.n.eval(p) {
	case triTrue:
		return triFalse
	case triFalse:
		return triTrue
	}
	return triUnknown
}

type kind int8

const (
	kNull kind = iota
	kString
	kNumber
	kBool
)

type value struct {
	kind  kind
	s     string
	f     float64
	i     int64
	isInt bool
	b     bool
}

type operand struct {
	lit  bool
	name string
	val  value
}

func (o operand) describe() string {
	if !o.lit {
		return "property " + o.name
	}
	switch o.val.kind {
	case kString:
		return "string '" + o.val.s + "'"
	case kBool:
		return strconv.FormatBool(o.val.b)
	}
	return "a number"
}

// resolve gives a property operand its string value (null when absent).
func (o operand) resolve(p Props) value {
	if o.lit {
		return o.val
	}
	s, ok := p(o.name)
	if !ok {
		return value{kind: kNull}
	}
	return value{kind: kString, s: s}
}

// coerce converts a property's string to the kind of the other side.
func coerce(v value, to kind) (value, bool) {
	if v.kind == to || v.kind != kString {
		return v, v.kind == to
	}
	switch to {
	case kNumber:
		n, ok := parseNumber(strings.TrimSpace(v.s))
		return n, ok
	case kBool:
		switch strings.ToLower(strings.TrimSpace(v.s)) {
		case "true":
			return value{kind: kBool, b: true}, true
		case "false":
			return value{kind: kBool, b: false}, true
		}
	}
	return v, false
}

// compare orders a and b: -1, 0, 1, or ok=false when they cannot be
// compared (null, or kinds that do not convert).
func compare(a, b value) (int, bool) {
	if a.kind == kNull || b.kind == kNull {
		return 0, false
	}
	if a.kind != b.kind {
		var ok bool
		switch {
		case a.kind == kString:
			a, ok = coerce(a, b.kind)
		case b.kind == kString:
			b, ok = coerce(b, a.kind)
		}
		if !ok {
			return 0, false
		}
	}
	switch a.kind {
	case kString:
		return strings.Compare(a.s, b.s), true
	case kBool:
		if a.b == b.b {
			return 0, true
		}
		if !a.b {
			return -1, true
		}
		return 1, true
	}
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1, true
		case a.i > b.i:
			return 1, true
		}
		return 0, true
	}
	if math.IsNaN(a.f) || math.IsNaN(b.f) {
		return 0, false
	}
	switch {
	case a.f < b.f:
		return -1, true
	case a.f > b.f:
		return 1, true
	}
	return 0, true
}

type cmpNode struct {
	op   string
	l, r operand
}

func (n cmpNode) eval(p Props) tri {
	c, ok := compare(n.l.resolve(p), n.r.resolve(p))
	if !ok {
		return triUnknown
	}
	switch n.op {
	case "=":
		return triOf(c == 0)
	case "<>", "!=":
		return triOf(c != 0)
	case "<":
		return triOf(c < 0)
	case "<=":
		return triOf(c <= 0)
	case ">":
		return triOf(c > 0)
	}
	return triOf(c >= 0) // ">="
}

type inNode struct {
	l   operand
	set []operand
}

func (n inNode) eval(p Props) tri {
	v := n.l.resolve(p)
	if v.kind == kNull {
		return triUnknown
	}
	res := triFalse
	for _, o := range n.set {
		c, ok := compare(v, o.val)
		if !ok {
			res = triUnknown
			continue
		}
		if c == 0 {
			return triTrue
		}
	}
	return res
}

type isNullNode struct {
	name string
	neg  bool
}

func (n isNullNode) eval(p Props) tri {
	_, ok := p(n.name)
	return triOf(ok == n.neg)
}

type matchNode struct {
	kind string
	l    operand
	s    string
}

func (n matchNode) eval(p Props) tri {
	v := n.l.resolve(p)
	if v.kind != kString {
		return triUnknown
	}
	switch n.kind {
	case "CONTAINS":
		return triOf(strings.Contains(v.s, n.s))
	case "STARTSWITH":
		return triOf(strings.HasPrefix(v.s, n.s))
	}
	return triOf(strings.HasSuffix(v.s, n.s))
}
