package journey

import (
	"cmp"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Paths name a place in a spec the way a marketer reads it:
// "steps[3].wait_for.timeout", "exit_events[1]", "steps[0].send.email.data.first_name".
// Map keys that are not plain identifiers are quoted: `data["first name"]`.

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// joinField appends a struct field name to a path.
func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// joinKey appends a map key to a path, quoting keys that would be ambiguous.
func joinKey(path, key string) string {
	if plainKey.MatchString(key) {
		return joinField(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// pathSeg is one step of a path: a field or map key, or a list index.
type pathSeg struct {
	name    string
	index   int
	isIndex bool
}

// splitPath is the inverse of joinField, joinKey and indexPath. It is lenient:
// anything it cannot read becomes part of a name, which only affects ordering.
func splitPath(p string) []pathSeg {
	var segs []pathSeg
	for len(p) > 0 {
		switch p[0] {
		case '.':
			p = p[1:]
		case '[':
			if len(p) > 1 && p[1] == '"' {
				if q, err := strconv.QuotedPrefix(p[1:]); err == nil {
					name, _ := strconv.Unquote(q)
					segs = append(segs, pathSeg{name: name})
					p = strings.TrimPrefix(p[1+len(q):], "]")
					continue
				}
			}
			end := strings.IndexByte(p, ']')
			if end < 0 {
				segs = append(segs, pathSeg{name: p})
				return segs
			}
			n, err := strconv.Atoi(p[1:end])
			if err != nil {
				segs = append(segs, pathSeg{name: p[1:end]})
			} else {
				segs = append(segs, pathSeg{index: n, isIndex: true})
			}
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, pathSeg{name: p[:end]})
			p = p[end:]
		}
	}
	return segs
}

// comparePaths orders paths as the fields appear in a spec: struct fields in
// declaration order (the order the examples are written in), list items by
// index, map keys alphabetically, and a path before the paths inside it.
func comparePaths(a, b string) int {
	if a == b {
		return 0
	}
	sa, sb := splitPath(a), splitPath(b)
	t := specType
	for i := 0; i < len(sa) && i < len(sb); i++ {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		x, y := sa[i], sb[i]
		switch {
		case x.isIndex && y.isIndex:
			if c := cmp.Compare(x.index, y.index); c != 0 {
				return c
			}
		case x.isIndex != y.isIndex:
			// Only possible for malformed paths; indexes first keeps it total.
			if x.isIndex {
				return -1
			}
			return 1
		case x.name != y.name:
			if c := cmp.Compare(fieldRank(t, x.name), fieldRank(t, y.name)); c != 0 {
				return c
			}
			return cmp.Compare(x.name, y.name)
		}
		t = childType(t, x)
	}
	return cmp.Compare(len(sa), len(sb))
}

// fieldRank is a field's declaration position in struct t; unknown names (and
// map keys) rank after every declared field and are then ordered by name.
func fieldRank(t reflect.Type, name string) int {
	if t == nil || t.Kind() != reflect.Struct {
		return 0
	}
	names := orderedJSONNames(t)
	if i := slices.Index(names, name); i >= 0 {
		return i
	}
	return len(names)
}

// childType is the type reached from t through seg, or nil when unknown.
func childType(t reflect.Type, seg pathSeg) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if seg.isIndex {
			return nil
		}
		if f, ok := jsonFields(t)[seg.name]; ok {
			return f.Type
		}
		return nil
	case reflect.Slice, reflect.Array, reflect.Map:
		return t.Elem()
	}
	return nil
}
