package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// openAPIDoc is the part of the document the checks below read.
type openAPIDoc struct {
	OpenAPI  string                    `json:"openapi"`
	Security []map[string][]string     `json:"security"`
	Paths    map[string]map[string]any `json:"paths"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(OpenAPI, &raw); err != nil {
		t.Fatal(err)
	}
	return doc, raw
}

// TestOpenAPIMatchesRoutes: every route is documented, every documented
// operation is routed, and the documented security matches the route's auth.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	if len(doc.Security) == 0 {
		t.Error("the document should require bearerAuth by default")
	}

	routed := map[string]route{}
	for _, rt := range routes {
		key := strings.ToLower(rt.method) + " " + rt.path
		if _, dup := routed[key]; dup {
			t.Errorf("route %s registered twice", key)
		}
		routed[key] = rt
	}
	documented := map[string]map[string]any{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if slices.Contains(httpMethods, method) {
				documented[method+" "+path], _ = op.(map[string]any)
			}
		}
	}

	for key, rt := range routed {
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is not in openapi.yaml", key)
			continue
		}
		sec, hasSec := op["security"]
		public := hasSec && fmt.Sprint(sec) == "[]"
		if public == rt.auth {
			t.Errorf("%s: route auth=%v but openapi security=%v", key, rt.auth, sec)
		}
		if rt.auth {
			responses, _ := op["responses"].(map[string]any)
			if _, ok := responses["401"]; !ok {
				t.Errorf("%s: authenticated, so it should document 401", key)
			}
		}
	}
	for key := range documented {
		if _, ok := routed[key]; !ok {
			t.Errorf("openapi.yaml documents %s, which no route serves", key)
		}
	}
}

// TestOpenAPIPathParameters: every {param} of a path is declared, at the
// path or the operation level.
func TestOpenAPIPathParameters(t *testing.T) {
	_, raw := loadOpenAPI(t)
	components := raw["components"].(map[string]any)
	paramsByRef := components["parameters"].(map[string]any)
	resolve := func(p any) map[string]any {
		m := p.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			return paramsByRef[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
		}
		return m
	}
	placeholder := regexp.MustCompile(`\{([a-z_]+)\}`)
	for path, itemAny := range raw["paths"].(map[string]any) {
		item := itemAny.(map[string]any)
		declared := map[string]bool{}
		collect := func(list any) {
			ps, _ := list.([]any)
			for _, p := range ps {
				if m := resolve(p); m["in"] == "path" {
					declared[m["name"].(string)] = true
				}
			}
		}
		collect(item["parameters"])
		for _, m := range httpMethods {
			if op, ok := item[m].(map[string]any); ok {
				collect(op["parameters"])
			}
		}
		for _, want := range placeholder.FindAllStringSubmatch(path, -1) {
			if !declared[want[1]] {
				t.Errorf("%s: path parameter %q is not declared", path, want[1])
			}
		}
	}
}

// TestOpenAPIRefsResolve catches typos in $ref targets.
func TestOpenAPIRefsResolve(t *testing.T) {
	_, raw := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("$ref %q: only local references are used", ref)
				} else {
					var cur any = raw
					for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
						m, ok := cur.(map[string]any)
						if !ok {
							cur = nil
							break
						}
						cur = m[part]
					}
					if cur == nil {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
			}
			for _, child := range x {
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(raw)
}
