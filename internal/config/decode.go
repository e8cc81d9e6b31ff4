package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/internal/spec"
)

// Typed decoding. Every value from every source (the built-in defaults, the
// config file, each environment variable and each --set flag) is converted
// here, against the Go type of its key in Config, into exactly that type
// before viper sees it: viper then only layers the sources, and its weak
// decoding (mapstructure: 2.5 → 2, true → 1, "" → 0) never runs on a value
// of the wrong type. A value of the wrong type is an *Error naming the
// source (with the line, for files), the key, the value and the expected type.
//
// The rules, chosen so that a value means what it says:
//   - a whole-number key (epochs, seeds…) takes integers; a float is accepted
//     only when it is integral (2.0 and 1e3 are 2 and 1000; 2.5 is an error);
//     quoted text, booleans and nulls are errors;
//   - a number key (lr, val_fraction…) takes integers and floats (1e-3 is
//     0.001), finite only;
//   - a text key takes any scalar as the exact text written (name: 007 is
//     "007", not 7); null is the empty text; !!binary (how YAML writers store
//     text that is not UTF-8) is decoded. From the environment and --set
//     the value is taken verbatim, without YAML parsing;
//   - a list key takes a YAML list, or one scalar as a one-element list; from
//     the environment and --set also comma-separated values (seeds=0,1,2);
//     null is the empty list;
//   - a section takes a mapping of its keys; null leaves it as it is.

// decoder converts the values of one source.
type decoder struct {
	source string // e.g. "configs/quick.yaml", "environment variable KDCAL_SEEDS"
	lines  bool   // the source is a file: errors carry its line numbers
	csv    bool   // a text scalar for a list key is split at commas (environment, --set)
	errs   []error
}

var (
	typeInt     = reflect.TypeOf(0)
	typeFloat   = reflect.TypeOf(0.0)
	typeString  = reflect.TypeOf("")
	typeBool    = reflect.TypeOf(false)
	typeConfig  = reflect.TypeOf(Config{})
	typeTeacher = reflect.TypeOf(Teacher{})
	typeTable   = reflect.TypeOf(map[string]ModelSpec{})
	typeInts    = reflect.TypeOf([]int{})
	maxExactInt = float64(1 << 53) // floats above this are not exactly integers any more
)

func (d *decoder) fail(key string, n *yaml.Node, format string, args ...any) {
	src := d.source
	if d.lines && n != nil && n.Line > 0 {
		src = fmt.Sprintf("%s:%d", d.source, n.Line)
	}
	d.errs = append(d.errs, &Error{Source: src, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// wrongType records a value that does not fit key's type t.
func (d *decoder) wrongType(key string, n *yaml.Node, t reflect.Type, why string) {
	msg := fmt.Sprintf("got %s, expected %s", describe(n), expected(t))
	if why != "" {
		msg += "; " + why
	}
	d.fail(key, n, "%s", msg)
}

// value converts node n, the value of key, to t. ok is false when n is
// null for a section (nothing to set) or when an error was recorded.
func (d *decoder) value(key string, t reflect.Type, n *yaml.Node) (v any, ok bool) {
	n = deref(n)
	switch t.Kind() {
	case reflect.Struct:
		return d.section(key, t, n)
	case reflect.Map:
		return d.table(key, t, n)
	case reflect.Slice:
		return d.list(key, t, n)
	case reflect.Interface:
		return d.specValue(key, n)
	}
	if n.Kind != yaml.ScalarNode {
		d.wrongType(key, n, t, "")
		return nil, false
	}
	switch t {
	case typeInt:
		return d.integer(key, n)
	case typeFloat:
		return d.float(key, n)
	case typeString:
		return d.text(key, n)
	case typeBool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.wrongType(key, n, t, "")
			return nil, false
		}
		return b, true
	}
	panic("config: no decoder for " + t.String())
}

// text returns a scalar's text as written; a !!binary scalar (how YAML
// writers store text that is not UTF-8) is decoded.
func (d *decoder) text(key string, n *yaml.Node) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return "", true
	case "!!binary":
		var s string
		if err := n.Decode(&s); err != nil {
			d.fail(key, n, "the !!binary value is not valid base64")
			return nil, false
		}
		return s, true
	}
	return n.Value, true
}

func (d *decoder) integer(key string, n *yaml.Node) (any, bool) {
	var x float64
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return int(i), true
		}
		if n.Decode(&x) != nil {
			d.wrongType(key, n, typeInt, "")
			return nil, false
		}
	case "!!float":
		if n.Decode(&x) != nil {
			d.wrongType(key, n, typeInt, "")
			return nil, false
		}
	default:
		d.wrongType(key, n, typeInt, quoteHint(n))
		return nil, false
	}
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		d.wrongType(key, n, typeInt, "")
	case x != math.Trunc(x):
		d.wrongType(key, n, typeInt, fmt.Sprintf("%s has a fractional part, and kdcal does not round it", n.Value))
	case math.Abs(x) > maxExactInt:
		d.wrongType(key, n, typeInt, "it is too large")
	default:
		return int(x), true
	}
	return nil, false
}

func (d *decoder) float(key string, n *yaml.Node) (any, bool) {
	var x float64
	if tag := n.ShortTag(); (tag != "!!int" && tag != "!!float") || n.Decode(&x) != nil {
		d.wrongType(key, n, typeFloat, quoteHint(n))
		return nil, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		d.wrongType(key, n, typeFloat, "")
		return nil, false
	}
	return x, true
}

// specValue converts a value of a model spec (teacher.<family>.<size>.<key>,
// student.model.<key>): a whole number or a list of whole numbers. Which
// keys a spec has is its family's to check (config.Validate).
func (d *decoder) specValue(key string, n *yaml.Node) (any, bool) {
	if n.Kind == yaml.SequenceNode || isNull(n) {
		return d.list(key, typeInts, n)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!str" {
		return d.integer(key, n)
	}
	d.fail(key, n, "got %s, expected a whole number or a list of whole numbers (e.g. [8, 16])", describe(n))
	return nil, false
}

// quoteHint suggests removing quotes from quoted text that reads as a number.
func quoteHint(n *yaml.Node) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return ""
	}
	if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
		return "remove the quotes to give a number"
	}
	return ""
}

// list converts a sequence (or a single scalar) to a slice of t's element type.
func (d *decoder) list(key string, t reflect.Type, n *yaml.Node) (any, bool) {
	var items []*yaml.Node
	switch {
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case n.Kind == yaml.ScalarNode && isNull(n):
	case n.Kind == yaml.ScalarNode && d.csv && n.ShortTag() == "!!str" && strings.Contains(n.Value, ","):
		for _, part := range strings.Split(n.Value, ",") {
			items = append(items, scalarNode(strings.TrimSpace(part), n.Line))
		}
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		d.wrongType(key, n, t, "")
		return nil, false
	}
	out := reflect.MakeSlice(t, 0, len(items))
	ok := true
	for i, it := range items {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || (isNull(it) && t.Elem() != typeString) {
			d.fail(key, it, "element %d: got %s, expected %s", i, describe(it), expected(t.Elem()))
			ok = false
			continue
		}
		v, good := d.value(fmt.Sprintf("%s[%d]", key, i), t.Elem(), it)
		if good {
			out = reflect.Append(out, reflect.ValueOf(v))
		}
		ok = ok && good
	}
	return out.Interface(), ok
}

// section converts a mapping to a map of the struct t's keys.
func (d *decoder) section(key string, t reflect.Type, n *yaml.Node) (any, bool) {
	if n.Kind == yaml.ScalarNode && isNull(n) {
		return nil, false
	}
	pairs, ok := d.pairs(key, n, t)
	if !ok {
		return nil, false
	}
	out := map[string]any{}
	for _, p := range pairs {
		path := join(key, p.key)
		ft, found := fieldType(t, p.key)
		if !found {
			d.errs = append(d.errs, d.unknown(path, p.keyNode))
			continue
		}
		if v, good := d.value(path, ft, p.value); good {
			out[p.key] = v
		}
	}
	return out, true
}

// table converts a mapping of names (teacher sizes) to a map of sections.
func (d *decoder) table(key string, t reflect.Type, n *yaml.Node) (any, bool) {
	if n.Kind == yaml.ScalarNode && isNull(n) {
		return nil, false
	}
	pairs, ok := d.pairs(key, n, t)
	if !ok {
		return nil, false
	}
	keys := specKeys(key, t)
	out := map[string]any{}
	for _, p := range pairs {
		if keys != nil && !slices.Contains(keys, p.key) {
			d.errs = append(d.errs, d.unknown(join(key, p.key), p.keyNode))
			continue
		}
		if v, good := d.value(join(key, p.key), t.Elem(), p.value); good {
			out[p.key] = v
		}
	}
	return out, true
}

// specKeys returns the keys a spec at key may have when its family is
// known from the key itself (teacher.<family>.<size>), else nil (the family's
// Check reports unknown keys of student.model after the sources are merged).
func specKeys(key string, t reflect.Type) []string {
	parts := strings.Split(key, ".")
	if t.Elem().Kind() != reflect.Interface || len(parts) != 3 || parts[0] != "teacher" {
		return nil
	}
	f, err := spec.LookupFamily(parts[1])
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range f.Keys() {
		out = append(out, k.Name)
	}
	return out
}

func (d *decoder) unknown(path string, n *yaml.Node) error {
	src := d.source
	if d.lines && n != nil && n.Line > 0 {
		src = fmt.Sprintf("%s:%d", d.source, n.Line)
	}
	return unknownKey(src, path)
}

type pair struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
}

// pairs lists the entries of a mapping node, expanding YAML merge keys
// ("<<: *anchor", explicit keys winning) and refusing duplicate keys.
func (d *decoder) pairs(key string, n *yaml.Node, t reflect.Type) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(key, n, t, "")
		return nil, false
	}
	var out, merged []pair
	seen := map[string]bool{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			m, good := d.mergePairs(key, deref(v), t)
			merged, ok = append(merged, m...), ok && good
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(key, k, "a key must be a name, not %s", describe(k))
			ok = false
			continue
		}
		if seen[k.Value] {
			d.fail(join(key, k.Value), k, "is set twice in this section; keep one")
			ok = false
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k.Value, k, v})
	}
	for _, p := range merged {
		if !seen[p.key] {
			seen[p.key] = true
			out = append(out, p)
		}
	}
	return out, ok
}

// mergePairs returns the entries a merge key brings: a mapping or a list of
// mappings, earlier ones winning.
func (d *decoder) mergePairs(key string, v *yaml.Node, t reflect.Type) ([]pair, bool) {
	if v.Kind == yaml.MappingNode {
		return d.pairs(key, v, t)
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(key, v, "a YAML merge (<<) needs a mapping or a list of mappings, got %s", describe(v))
		return nil, false
	}
	var out []pair
	seen := map[string]bool{}
	ok := true
	for _, m := range v.Content {
		ps, good := d.pairs(key, deref(m), t)
		ok = ok && good
		for _, p := range ps {
			if !seen[p.key] {
				seen[p.key] = true
				out = append(out, p)
			}
		}
	}
	return out, ok
}

// deref follows YAML aliases and unwraps a document node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n != nil; i++ {
		switch {
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func scalarNode(text string, line int) *yaml.Node {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err == nil && len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode {
		n.Content[0].Line = line
		return n.Content[0]
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text, Line: line}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// describe says what a node holds, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.ScalarNode:
	default:
		return "an unreadable value"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch tag := n.ShortTag(); {
	case tag == "!!null":
		return "no value"
	case tag == "!!bool":
		return v + " (a boolean)"
	case tag == "!!int":
		return v + " (an integer)"
	case tag == "!!float":
		var f float64
		switch err := n.Decode(&f); {
		case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
			return v + " (not a finite number)"
		case f == math.Trunc(f):
			return v + " (a number)"
		}
		return v + " (a fractional number)"
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return strconv.Quote(v) + " (quoted text)"
	default:
		return strconv.Quote(v) + " (text)"
	}
}

// expected names what a key of type t takes.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "a whole number"
	case reflect.Float64:
		return "a finite number"
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct:
		return "a section of keys"
	case reflect.Map:
		return "a section of named entries"
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.Int:
			return "a list of whole numbers (e.g. [0, 1, 2])"
		case reflect.Float64:
			return "a list of numbers (e.g. [1, 4])"
		}
		return "a list of names (e.g. [a, b])"
	}
	return t.String()
}

// fieldType returns the type of the field of struct t tagged name; under
// teacher, a registered family's name is its size table.
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	if t == typeTeacher {
		if _, err := spec.LookupFamily(name); err == nil {
			return typeTable, true
		}
	}
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Tag.Get("mapstructure") == name {
			return f.Type, true
		}
	}
	return nil, false
}

// typeAt returns the Go type of a dotted key, map entries included
// ("teacher.mlp.huge.hidden").
func typeAt(key string) (reflect.Type, bool) {
	t := typeConfig
	for _, part := range strings.Split(key, ".") {
		switch t.Kind() {
		case reflect.Struct:
			ft, ok := fieldType(t, part)
			if !ok {
				return nil, false
			}
			t = ft
		case reflect.Map:
			t = t.Elem()
		default:
			return nil, false
		}
	}
	return t, true
}
