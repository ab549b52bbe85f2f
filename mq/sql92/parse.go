package sql92

import (
	"strconv"
	"strings"
)

// Expr is a compiled filter; it is safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// String is the expression's source.
func (e *Expr) String() string { return e.src }

// Compile parses a filter expression.
func Compile(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tEOF {
		return nil, errAt(0, "the expression is empty")
	}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, errAt(t.pos, "unexpected %s after a complete expression", describe(t))
	}
	return &Expr{src: src, root: root}, nil
}

// maxDepth bounds nesting, so a hostile expression cannot exhaust the stack.
const maxDepth = 100

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(k string) bool {
	if t := p.peek(); t.kind == tKeyword && t.text == k {
		p.i++
		return true
	}
	return false
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return "string '" + t.text + "'"
	case tKeyword:
		return "keyword " + t.text
	}
	return "'" + t.text + "'"
}

func (p *parser) or(depth int) (node, error) {
	if depth > maxDepth {
		return nil, errAt(p.peek().pos, "the expression nests deeper than %d", maxDepth)
	}
	left, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		right, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		left = orNode{left, right}
	}
	return left, nil
}

func (p *parser) and(depth int) (node, error) {
	left, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		right, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		left = andNode{left, right}
	}
	return left, nil
}

func (p *parser) not(depth int) (node, error) {
	if p.keyword("NOT") {
		if depth > maxDepth {
			return nil, errAt(p.peek().pos, "the expression nests deeper than %d", maxDepth)
		}
		n, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.predicate(depth)
}

func (p *parser) predicate(depth int) (node, error) {
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, errAt(c.pos, "expected ')' to close the '(' at position %d, found %s", t.pos+1, describe(c))
		}
		return n, nil
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	if left.lit && left.val.kind == kBool {
		if n := p.peek(); n.kind == tEOF || n.kind == tRParen || n.kind == tKeyword && (n.text == "AND" || n.text == "OR") {
			return constNode(left.val.b), nil
		}
	}
	return p.tail(left)
}

// tail parses what follows a predicate's first operand.
func (p *parser) tail(left operand) (node, error) {
	t := p.next()
	if t.kind == tOp {
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		return cmpNode{op: t.text, l: left, r: right}, nil
	}
	if t.kind != tKeyword {
		return nil, errAt(t.pos, "expected a comparison, BETWEEN, IN, IS or a string match after %s, found %s", left.describe(), describe(t))
	}
	if t.text == "IS" {
		neg := p.keyword("NOT")
		if !p.keyword("NULL") {
			return nil, errAt(p.peek().pos, "expected NULL after IS, found %s", describe(p.peek()))
		}
		if left.lit {
			return nil, errAt(t.pos, "IS NULL needs a property name, not %s", left.describe())
		}
		return isNullNode{name: left.name, neg: neg}, nil
	}
	neg := false
	if t.text == "NOT" {
		neg = true
		t = p.next()
		if t.kind != tKeyword {
			return nil, errAt(t.pos, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, found %s", describe(t))
		}
	}
	var n node
	var err error
	switch t.text {
	case "BETWEEN":
		n, err = p.between(left)
	case "IN":
		n, err = p.in(left)
	case "CONTAINS", "STARTSWITH", "ENDSWITH":
		n, err = p.match(left, t)
	default:
		return nil, errAt(t.pos, "unexpected keyword %s after %s", t.text, left.describe())
	}
	if err != nil {
		return nil, err
	}
	if neg {
		n = notNode{n}
	}
	return n, nil
}

func (p *parser) between(left operand) (node, error) {
	lo, err := p.operand()
	if err != nil {
		return nil, err
	}
	if !p.keyword("AND") {
		return nil, errAt(p.peek().pos, "expected AND in BETWEEN, found %s", describe(p.peek()))
	}
	hi, err := p.operand()
	if err != nil {
		return nil, err
	}
	return andNode{cmpNode{op: ">=", l: left, r: lo}, cmpNode{op: "<=", l: left, r: hi}}, nil
}

func (p *parser) in(left operand) (node, error) {
	if t := p.next(); t.kind != tLParen {
		return nil, errAt(t.pos, "expected '(' after IN, found %s", describe(t))
	}
	var set []operand
	for {
		v, err := p.operand()
		if err != nil {
			return nil, err
		}
		if !v.lit {
			return nil, errAt(p.toks[p.i-1].pos, "IN lists literals only, not the property %s", v.name)
		}
		set = append(set, v)
		t := p.next()
		if t.kind == tRParen {
			return inNode{l: left, set: set}, nil
		}
		if t.kind != tComma {
			return nil, errAt(t.pos, "expected ',' or ')' in the IN list, found %s", describe(t))
		}
	}
}

func (p *parser) match(left operand, kw token) (node, error) {
	t := p.next()
	if t.kind != tString {
		return nil, errAt(t.pos, "%s needs a string literal, found %s", kw.text, describe(t))
	}
	return matchNode{kind: kw.text, l: left, s: t.text}, nil
}

// operand parses a property name or a literal.
func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tIdent:
		return operand{name: t.text}, nil
	case tString:
		return operand{lit: true, val: value{kind: kString, s: t.text}}, nil
	case tNumber:
		v, ok := parseNumber(t.text)
		if !ok {
			return operand{}, errAt(t.pos, "bad number %q", t.text)
		}
		return operand{lit: true, val: v}, nil
	case tKeyword:
		switch t.text {
		case "TRUE", "FALSE":
			return operand{lit: true, val: value{kind: kBool, b: t.text == "TRUE"}}, nil
		case "NULL":
			return operand{}, errAt(t.pos, "NULL is only allowed in IS [NOT] NULL")
		}
	}
	return operand{}, errAt(t.pos, "expected a property name or a literal, found %s", describe(t))
}

// parseNumber reads a decimal integer or float, ignoring a Java L/D suffix.
func parseNumber(s string) (value, bool) {
	s = strings.TrimRight(s, "LlDd")
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return value{kind: kNumber, isInt: true, i: i, f: float64(i)}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return value{}, false
	}
	return value{kind: kNumber, f: f}, true
}
