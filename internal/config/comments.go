package config

import (
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// KeyComment returns the one-line comment configs/default.yaml gives a
// leaf key (the text after "#" on its line), or, for a key inside a flow
// mapping such as `resnet8-w4: {depth: 8, width: 4}  # 4,934 params`, the
// comment of the nearest enclosing key that has one; "" if none.
func KeyComment(key string) string {
	c := keyComments()
	for k := key; k != ""; {
		if s, ok := c[k]; ok {
			return s
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// keyComments maps every key of default.yaml that has a line comment to it.
var keyComments = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	root, err := defaultsNode()
	if err != nil {
		return out
	}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		n = deref(n)
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := join(prefix, k.Value)
			c := k.LineComment
			if c == "" {
				c = v.LineComment
			}
			if c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "#")); c != "" {
				out[path] = c
			}
			walk(path, v)
		}
	}
	walk("", root)
	return out
})
