package npyfile

import (
	"fmt"
	"strconv"
	"strings"
)

// pyKind is the type of a Python literal value.
type pyKind int

const (
	pyStr pyKind = iota
	pyInt
	pyBool
	pyNone
	pyTuple
	pyList
	pyDict
)

func (k pyKind) String() string {
	return [...]string{"a string", "an integer", "a boolean", "None", "a tuple", "a list", "a dict"}[k]
}

// pyValue is a Python literal as ast.literal_eval would return it, limited
// to what .npy headers hold. Integers are kept as text (Int parses them) so
// that arbitrarily large values parse without overflow.
type pyValue struct {
	kind  pyKind
	str   string    // pyStr: the decoded string; pyInt: the literal's digits with sign and base prefix
	b     bool      // pyBool
	items []pyValue // pyTuple, pyList; pyDict: values, keyed by keys
	keys  []string  // pyDict: the (string) keys, in order, last duplicate wins on lookup
}

// get returns the value of a dict key, the last one when a key repeats (as
// in a Python dict display).
func (v pyValue) get(key string) (pyValue, bool) {
	for i := len(v.keys) - 1; i >= 0; i-- {
		if v.keys[i] == key {
			return v.items[i], true
		}
	}
	return pyValue{}, false
}

// Uint64 returns a non-negative integer's value; ok is false for negative
// values and values above max.
func (v pyValue) Uint64(max uint64) (n uint64, ok bool) {
	s := strings.ReplaceAll(v.str, "_", "")
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil || n > max || (neg && n != 0) {
		return 0, false
	}
	return n, true
}

// repr renders a value roughly as Python would, for error messages.
func (v pyValue) repr() string {
	switch v.kind {
	case pyStr:
		return strconv.Quote(v.str)
	case pyInt:
		return v.str
	case pyBool:
		if v.b {
			return "True"
		}
		return "False"
	case pyNone:
		return "None"
	case pyDict:
		return "{…}"
	}
	parts := make([]string, len(v.items))
	for i, it := range v.items {
		parts[i] = it.repr()
	}
	if v.kind == pyList {
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// pyParser parses the subset of Python literal syntax that ast.literal_eval
// accepts and .npy headers use: dict, tuple and list displays, strings
// (either quote, optional u/r prefix, adjacent strings concatenated),
// integers (decimal, 0x/0o/0b, '_' separators, unary + and -, and the
// Python 2 'L' suffix numpy tolerates in version 1.0 and 2.0 headers),
// True, False and None, with whitespace, backslash line continuations and
// '#' comments between tokens.
type pyParser struct {
	s       string
	pos     int
	allowL  bool // accept the Python 2 long suffix (format versions 1.0 and 2.0)
	depth   int
	maxDeep int
}

// errSyntax is a header that is not a Python literal.
type errSyntax struct {
	pos int
	msg string
}

func (e *errSyntax) Error() string { return fmt.Sprintf("%s at byte %d of the header", e.msg, e.pos) }

// parsePyLiteral parses s as one Python literal followed only by whitespace.
func parsePyLiteral(s string, allowL bool) (pyValue, error) {
	p := &pyParser{s: s, allowL: allowL, maxDeep: 32}
	v, err := p.value()
	if err != nil {
		return pyValue{}, err
	}
	p.skip()
	if p.pos < len(p.s) {
		return pyValue{}, p.fail("unexpected %q after the header's dict", p.s[p.pos:min(p.pos+10, len(p.s))])
	}
	return v, nil
}

func (p *pyParser) fail(format string, args ...any) error {
	return &errSyntax{pos: p.pos, msg: fmt.Sprintf(format, args...)}
}

// skip passes over whitespace, comments and line continuations.
func (p *pyParser) skip() {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\n' || p.s[p.pos+1] == '\r'):
			p.pos += 2
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' && p.s[p.pos] != '\r' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *pyParser) peek() byte {
	p.skip()
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *pyParser) value() (pyValue, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > p.maxDeep {
		return pyValue{}, p.fail("nesting deeper than %d", p.maxDeep)
	}
	switch c := p.peek(); {
	case c == 0:
		return pyValue{}, p.fail("unexpected end (is the closing brace missing?)")
	case c == '{':
		return p.dict()
	case c == '(':
		return p.paren()
	case c == '[':
		items, err := p.sequence('[', ']')
		return pyValue{kind: pyList, items: items}, err
	case c == '\'' || c == '"':
		return p.strings()
	case c == '+' || c == '-' || isDigit(c):
		return p.integer()
	case isIdentStart(c):
		return p.name()
	default:
		return pyValue{}, p.fail("unexpected %q", c)
	}
}

func (p *pyParser) dict() (pyValue, error) {
	p.pos++ // '{'
	d := pyValue{kind: pyDict}
	for {
		switch p.peek() {
		case '}':
			p.pos++
			return d, nil
		case 0:
			return pyValue{}, p.fail("unexpected end of header: the dict has no closing brace")
		}
		k, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		if k.kind != pyStr {
			return pyValue{}, p.fail("dict key %s is not a string", k.repr())
		}
		if p.peek() != ':' {
			return pyValue{}, p.fail("expected ':' after key %q", k.str)
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		d.keys, d.items = append(d.keys, k.str), append(d.items, v)
		switch p.peek() {
		case ',':
			p.pos++
		case '}', 0:
		default:
			return pyValue{}, p.fail("expected ',' or '}' after the value of %q", k.str)
		}
	}
}

// paren parses "()" (empty tuple), "(x)" (x itself) or "(x, …)" (a tuple).
func (p *pyParser) paren() (pyValue, error) {
	items, trailing, err := p.elements('(', ')')
	if err != nil {
		return pyValue{}, err
	}
	if len(items) == 1 && !trailing {
		return items[0], nil
	}
	return pyValue{kind: pyTuple, items: items}, nil
}

func (p *pyParser) sequence(open, close byte) ([]pyValue, error) {
	items, _, err := p.elements(open, close)
	return items, err
}

// elements parses open value (, value)* ,? close and reports whether a comma
// followed the last value.
func (p *pyParser) elements(open, close byte) (items []pyValue, comma bool, err error) {
	p.pos++ // open
	for {
		if p.peek() == close {
			p.pos++
			return items, comma, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, false, err
		}
		items = append(items, v)
		comma = false
		switch p.peek() {
		case ',':
			p.pos++
			comma = true
		case close:
		case 0:
			return nil, false, p.fail("unexpected end: %q is not closed", open)
		default:
			return nil, false, p.fail("expected ',' or %q", close)
		}
	}
}

// strings parses one or more adjacent string literals (concatenated, as in Python).
func (p *pyParser) strings() (pyValue, error) {
	var b strings.Builder
	for {
		s, err := p.str()
		if err != nil {
			return pyValue{}, err
		}
		b.WriteString(s)
		save := p.pos
		c := p.peek()
		if c == '\'' || c == '"' {
			continue
		}
		if (c == 'u' || c == 'U' || c == 'r' || c == 'R') && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\'' || p.s[p.pos+1] == '"') {
			p.pos++
			continue
		}
		p.pos = save
		return pyValue{kind: pyStr, str: b.String()}, nil
	}
}

// str parses one single-line string literal at p.pos (the prefix already consumed).
func (p *pyParser) str() (string, error) {
	raw := p.pos > 0 && (p.s[p.pos-1] == 'r' || p.s[p.pos-1] == 'R')
	q := p.s[p.pos]
	if strings.HasPrefix(p.s[p.pos:], strings.Repeat(string(q), 3)) {
		return "", p.fail("triple-quoted strings are not supported in a .npy header")
	}
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\n' || c == '\r':
			return "", p.fail("string is not closed before the end of the line")
		case c == '\\' && p.pos+1 < len(p.s):
			if raw {
				b.WriteByte(c)
				b.WriteByte(p.s[p.pos+1])
				p.pos += 2
				continue
			}
			if err := p.escape(&b); err != nil {
				return "", err
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.fail("string is not closed")
}

// escape decodes a backslash escape (Python's simple escapes and \xHH).
func (p *pyParser) escape(b *strings.Builder) error {
	c := p.s[p.pos+1]
	simple := map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'n': '\n', 't': '\t', 'r': '\r', '0': 0, 'a': 7, 'b': 8, 'f': 12, 'v': 11}
	if r, ok := simple[c]; ok {
		b.WriteByte(r)
		p.pos += 2
		return nil
	}
	if c == '\n' {
		p.pos += 2
		return nil
	}
	if c == 'x' && p.pos+4 <= len(p.s) {
		if n, err := strconv.ParseUint(p.s[p.pos+2:p.pos+4], 16, 8); err == nil {
			b.WriteByte(byte(n))
			p.pos += 4
			return nil
		}
	}
	// Python keeps unknown escapes as written.
	b.WriteByte('\\')
	b.WriteByte(c)
	p.pos += 2
	return nil
}

// integer parses [+-]* followed by a Python 3 integer literal.
func (p *pyParser) integer() (pyValue, error) {
	neg := false
	for {
		c := p.peek()
		if c != '+' && c != '-' {
			break
		}
		neg = neg != (c == '-')
		p.pos++
	}
	p.skip()
	start := p.pos
	for p.pos < len(p.s) && (isDigit(p.s[p.pos]) || isIdentStart(p.s[p.pos])) {
		p.pos++
	}
	lit := p.s[start:p.pos]
	if p.allowL && len(lit) > 1 && lit[len(lit)-1] == 'L' { // numpy's _filter_header drops only 'L'
		lit = lit[:len(lit)-1]
	}
	if !validIntLiteral(lit) {
		return pyValue{}, p.fail("%q is not an integer literal", p.s[start:p.pos])
	}
	if neg {
		lit = "-" + lit
	}
	return pyValue{kind: pyInt, str: lit}, nil
}

// validIntLiteral reports whether s is a Python 3 integer literal: "0"
// (and "0_0"…), a decimal without leading zeros, or 0x/0o/0b with digits of
// that base, with single underscores between digits.
func validIntLiteral(s string) bool {
	if s == "" {
		return false
	}
	digits, base := s, 10
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			digits, base = s[2:], 16
		case 'o', 'O':
			digits, base = s[2:], 8
		case 'b', 'B':
			digits, base = s[2:], 2
		default:
			return strings.Trim(s, "0_") == "" && !strings.Contains(s, "__") && s[len(s)-1] != '_'
		}
		digits = strings.TrimPrefix(digits, "_")
	}
	if digits == "" || digits[0] == '_' || digits[len(digits)-1] == '_' || strings.Contains(digits, "__") {
		return false
	}
	for _, c := range strings.ReplaceAll(digits, "_", "") {
		if d, err := strconv.ParseUint(string(c), 36, 8); err != nil || int(d) >= base {
			return false
		}
	}
	return true
}

func (p *pyParser) name() (pyValue, error) {
	start := p.pos
	for p.pos < len(p.s) && (isIdentStart(p.s[p.pos]) || isDigit(p.s[p.pos])) {
		p.pos++
	}
	word := p.s[start:p.pos]
	switch word {
	case "True":
		return pyValue{kind: pyBool, b: true}, nil
	case "False":
		return pyValue{kind: pyBool}, nil
	case "None":
		return pyValue{kind: pyNone}, nil
	case "u", "U", "r", "R":
		if p.pos < len(p.s) && (p.s[p.pos] == '\'' || p.s[p.pos] == '"') {
			return p.strings()
		}
	}
	p.pos = start
	return pyValue{}, p.fail("%q is not a Python literal", word)
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
