package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"go.yaml.in/yaml/v3"
)

// decode adds the objects in every YAML (or JSON) document of data, the content of file.
// Empty documents are skipped.
func (r *renderer) decode(ctx context.Context, file string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := r.nextDocument(dec)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Error{File: file, Doc: doc, Err: err}
		}
		if v == nil {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return &Error{File: file, Doc: doc, Err: fmt.Errorf("%w: document is a %s, not a mapping", ErrInvalidObject, typeName(v))}
		}
		if err := r.add(file, doc, obj); err != nil {
			return err
		}
	}
}

// nextDocument parses the next document of dec into JSON-compatible values: map[string]any,
// []any, string, int64, float64, bool and nil. It returns io.EOF after the last document.
func (r *renderer) nextDocument(dec *yaml.Decoder) (any, error) {
	var n yaml.Node
	// Decoding into a Node keeps aliases as references: nothing is expanded yet, so memory
	// stays proportional to the input.
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	c := converter{r: r, expanding: map[*yaml.Node]bool{}}
	return c.value(&n, 0)
}

// converter turns a yaml.Node tree into JSON-compatible values, expanding aliases and merge
// keys within the render's alias budget.
type converter struct {
	r         *renderer
	expanding map[*yaml.Node]bool // anchors being expanded, to refuse cycles
}

func (c *converter) value(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: line %d: nesting deeper than %d", ErrTooLarge, n.Line, maxDepth)
	}
	if len(c.expanding) > 0 {
		c.r.aliasNodes++
		if c.r.aliasNodes > maxAliasNodes {
			return nil, fmt.Errorf("%w: YAML aliases expand to more than %d values", ErrTooLarge, maxAliasNodes)
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("%w: line %d: unknown anchor", ErrSyntax, n.Line)
		}
		if c.expanding[n.Alias] {
			return nil, fmt.Errorf("%w: line %d: anchor %q contains itself", ErrSyntax, n.Line, n.Alias.Anchor)
		}
		c.expanding[n.Alias] = true
		v, err := c.value(n.Alias, depth+1)
		delete(c.expanding, n.Alias)
		return v, err
	case yaml.ScalarNode:
		return scalar(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := c.value(item, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n, depth)
	default:
		return nil, fmt.Errorf("%w: line %d: unexpected node", ErrSyntax, n.Line)
	}
}

// mapping converts a mapping. Explicit keys win over merged ones ("<<"), and earlier merge
// sources win over later ones, as in YAML 1.1 merge keys. Duplicate keys are refused.
func (c *converter) mapping(n *yaml.Node, depth int) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key, err := mapKey(k)
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%w: line %d: duplicate key %q", ErrSyntax, k.Line, key)
		}
		val, err := c.value(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	for _, m := range merges {
		sources := []*yaml.Node{m}
		if target := deref(m); target.Kind == yaml.SequenceNode {
			sources = target.Content
		}
		for _, s := range sources {
			v, err := c.value(s, depth+1)
			if err != nil {
				return nil, err
			}
			src, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: line %d: merge key value is not a mapping", ErrSyntax, s.Line)
			}
			for k, v := range src {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
	}
	return out, nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapKey returns the JSON key for a scalar key: its text, whatever YAML type it resolves to,
// as sigs.k8s.io/yaml does for numbers and booleans.
func mapKey(k *yaml.Node) (string, error) {
	k = deref(k)
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%w: line %d: mapping key is not a scalar", ErrSyntax, k.Line)
	}
	return k.Value, nil
}

// scalar converts a scalar to a JSON-compatible value. Timestamps, binary data and custom
// tags keep their text.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case uint64:
			if x <= math.MaxInt64 {
				return int64(x), nil
			}
			return float64(x), nil
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("%w: line %d: %s is not a JSON number", ErrSyntax, n.Line, n.Value)
			}
			return x, nil
		case int64, bool:
			return x, nil
		default:
			return n.Value, nil
		}
	default:
		return n.Value, nil
	}
}

func typeName(v any) string {
	switch v.(type) {
	case []any:
		return "sequence"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
