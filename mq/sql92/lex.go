package sql92

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every compile error.
var ErrSyntax = errors.New("sql92: syntax error")

// MaxLen bounds an expression's length.
const MaxLen = 4096

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp     // = <> != < <= > >=
	tLParen // (
	tRParen // )
	tComma
	tKeyword // AND OR NOT BETWEEN IN IS NULL TRUE FALSE CONTAINS STARTSWITH ENDSWITH
)

type token struct {
	kind tokKind
	text string // keywords upper-cased; strings unquoted
	pos  int
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "BETWEEN": true, "IN": true, "IS": true, "NULL": true,
	"TRUE": true, "FALSE": true, "CONTAINS": true, "STARTSWITH": true, "ENDSWITH": true,
}

func errAt(pos int, format string, args ...any) error {
	return fmt.Errorf("%w at position %d: %s", ErrSyntax, pos+1, fmt.Sprintf(format, args...))
}

func lex(s string) ([]token, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: the expression is %d bytes, at most %d", ErrSyntax, len(s), MaxLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: the expression is not valid UTF-8", ErrSyntax)
	}
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '=':
			out = append(out, token{tOp, "=", i})
			i++
		case c == '<' || c == '>' || c == '!':
			op := string(c)
			if i+1 < len(s) && (s[i+1] == '=' || c == '<' && s[i+1] == '>') {
				op += string(s[i+1])
			}
			if op == "!" {
				return nil, errAt(i, "unexpected '!' (did you mean '!=' or '<>'?)")
			}
			out = append(out, token{tOp, op, i})
			i += len(op)
		case c == '\'':
			str, n, err := lexString(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, token{tString, str, i})
			i += n
		case isDigit(c) || (c == '-' || c == '+' || c == '.') && i+1 < len(s) && (isDigit(s[i+1]) || s[i+1] == '.'):
			n := lexNumber(s[i:])
			out = append(out, token{tNumber, s[i : i+n], i})
			i += n
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			word := s[i:j]
			if up := strings.ToUpper(word); keywords[up] {
				out = append(out, token{tKeyword, up, i})
			} else {
				out = append(out, token{tIdent, word, i})
			}
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, errAt(i, "unexpected character %q", r)
		}
	}
	return append(out, token{tEOF, "", len(s)}), nil
}

func lexString(s string, start int) (string, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), i + 1 - start, nil
	}
	return "", 0, errAt(start, "unterminated string")
}

func lexNumber(s string) int {
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	for i < len(s) && (isDigit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
		(s[i] == '-' || s[i] == '+') && (s[i-1] == 'e' || s[i-1] == 'E')) {
		i++
	}
	// A trailing L or D (Java literal suffixes) is accepted and ignored.
	if i < len(s) && (s[i] == 'L' || s[i] == 'l' || s[i] == 'D' || s[i] == 'd') {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '.' }
