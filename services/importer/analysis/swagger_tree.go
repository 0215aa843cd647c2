package analysis

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v4"
)

// swaggerTree reads a checked document into generic values: objects as
// map[string]any, arrays as []any, numbers as json.Number (so that integers
// keep every digit), and strings, booleans and nil.
func swaggerTree(src *source) (any, error) {
	if src.root == nil {
		dec := json.NewDecoder(bytes.NewReader(src.data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, jsonSyntaxError(src.data)
		}
		return v, nil
	}
	n := src.root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, &SyntaxError{Line: 1, Column: 1, Msg: "empty document"}
		}
		n = n.Content[0]
	}
	return yamlGeneric(n, 0), nil
}

// yamlGeneric converts a YAML node, whose bounds were checked, the way a JSON
// decoder would see it: mapping keys are named by their text, untagged
// timestamps stay strings, aliases and merge keys are expanded, and numbers
// JSON cannot carry (NaN, infinities) become null.
func yamlGeneric(n *yaml.Node, depth int) any {
	if n == nil || depth > 2*maxDepth {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return yamlGeneric(n.Alias, depth+1)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return yamlGeneric(n.Content[0], depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, yamlGeneric(c, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if k.ShortTag() == "!!merge" {
				merges = append(merges, v)
				continue
			}
			out[k.Value] = yamlGeneric(v, depth+1)
		}
		// Keys written in the mapping win over merged ones; earlier merged
		// mappings win over later ones.
		for _, m := range merges {
			yamlMerge(out, m, depth+1)
		}
		return out
	case yaml.ScalarNode:
		return yamlScalarValue(n)
	}
	return nil
}

func yamlMerge(out map[string]any, n *yaml.Node, depth int) {
	if n == nil || depth > 2*maxDepth {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		yamlMerge(out, n.Alias, depth+1)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			yamlMerge(out, c, depth+1)
		}
	case yaml.MappingNode:
		merged, _ := yamlGeneric(n, depth).(map[string]any)
		for k, v := range merged {
			if _, has := out[k]; !has {
				out[k] = v
			}
		}
	}
}

// jsonNumberText matches the numbers JSON can write as they are.
var jsonNumberText = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$`)

func yamlScalarValue(n *yaml.Node) any {
	tag := n.ShortTag()
	if (tag == "!!int" || tag == "!!float") && jsonNumberText.MatchString(n.Value) {
		// Kept as written, so that `version: 1.10` is still 1.10.
		return json.Number(n.Value)
	}
	switch tag {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var v any
		if n.Decode(&v) == nil {
			switch x := v.(type) {
			case int:
				return json.Number(strconv.Itoa(x))
			case int64:
				return json.Number(strconv.FormatInt(x, 10))
			case uint64:
				return json.Number(strconv.FormatUint(x, 10))
			case float64:
				return jsonFloat(x)
			}
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return jsonFloat(f)
		}
	case "!!timestamp":
		if n.Style&yaml.TaggedStyle != 0 {
			var t time.Time
			if n.Decode(&t) == nil {
				return t.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return n.Value
}

func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}
