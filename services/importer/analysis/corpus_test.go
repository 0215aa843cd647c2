package analysis_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// corpusDir is the shared corpus of real descriptions, beside the repository.
const corpusDir = "../../../../shared/corpus"

type manifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	File                 string                    `json:"file"`
	Format               string                    `json:"format"`
	Operations           int                       `json:"operations"`
	EffectiveAuthSummary map[string]int            `json:"effective_auth_summary"`
	SampleOperations     map[string]manifestSample `json:"sample_operations"`
	// UndeclaredAuth is a list for OpenAPI files; Postman files use an object.
	UndeclaredAuth json.RawMessage `json:"undeclared_auth"`
}

type manifestSample struct {
	Effective json.RawMessage `json:"effective"`
}

type manifestUndeclaredParam struct {
	Param      string `json:"param"`
	In         string `json:"in"`
	Operations int    `json:"operations"`
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "manifest.json"))
	if err != nil {
		t.Fatalf("read the corpus manifest: %v (the corpus of real descriptions must be at %s, i.e. shared/corpus beside the repository checkout)", err, corpusDir)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return m
}

// signature renders an operation's effective auth as the manifest does.
func signature(op analysis.Operation) string {
	if len(op.Auth) == 0 {
		if op.AuthSource == analysis.AuthFromOperation {
			return "none (explicit security: [])"
		}
		return "none (no security requirement declared)"
	}
	parts := make([]string, 0, len(op.Auth))
	for _, alt := range op.Auth {
		if len(alt) == 0 {
			parts = append(parts, "{} (anonymous allowed)")
			continue
		}
		parts = append(parts, strings.Join(schemeNames(alt), "+"))
	}
	return strings.Join(parts, " | ")
}

func schemeNames(alt []analysis.Requirement) []string {
	names := make([]string, 0, len(alt))
	for _, r := range alt {
		names = append(names, r.Scheme)
	}
	sort.Strings(names)
	return names
}

// effectiveNames is an operation's auth as lists of scheme names, "none" as nil.
func effectiveNames(op analysis.Operation) [][]string {
	if len(op.Auth) == 0 {
		return nil
	}
	out := make([][]string, 0, len(op.Auth))
	for _, alt := range op.Auth {
		out = append(out, schemeNames(alt))
	}
	return out
}

func findOperation(res *analysis.Result, key string) (analysis.Operation, bool) {
	for _, op := range res.Operations {
		if op.OperationID == key {
			return op, true
		}
	}
	for _, op := range res.Operations {
		if op.Method+" "+op.Path == key {
			return op, true
		}
	}
	// Postman: "METHOD folder/…/request name", the method as written.
	if method, name, ok := strings.Cut(key, " "); ok {
		for _, op := range res.Operations {
			if strings.EqualFold(op.Method, method) && op.OperationID == name {
				return op, true
			}
		}
	}
	return analysis.Operation{}, false
}

// postmanSignature renders a Postman operation's effective auth as the
// manifest does: the scheme, or "none", "@" where the chain set it.
func postmanSignature(op analysis.Operation) string {
	names := "none"
	if len(op.Auth) > 0 {
		names = signature(op)
	}
	level := map[analysis.AuthSource]string{
		analysis.AuthFromOperation: "request",
		analysis.AuthFromFolder:    "folder",
		analysis.AuthFromDocument:  "collection",
		analysis.AuthNone:          "nowhere",
	}[op.AuthSource]
	return names + " @ " + level
}

// decodeUndeclared reads undeclared_auth: a list for OpenAPI files, an
// object whose manual_auth_headers_or_query counts requests for Postman.
func decodeUndeclared(f manifestFile, out *[]manifestUndeclaredParam) error {
	if !strings.HasPrefix(f.Format, "postman") {
		return json.Unmarshal(f.UndeclaredAuth, out)
	}
	var pm struct {
		Manual []struct {
			Param    string `json:"param"`
			In       string `json:"in"`
			Requests int    `json:"requests"`
		} `json:"manual_auth_headers_or_query"`
	}
	if err := json.Unmarshal(f.UndeclaredAuth, &pm); err != nil {
		return err
	}
	for _, u := range pm.Manual {
		*out = append(*out, manifestUndeclaredParam{Param: u.Param, In: u.In, Operations: u.Requests})
	}
	return nil
}

func manifestLocation(in string) analysis.Location {
	if strings.HasPrefix(in, "requestBody") || in == "formData" {
		return analysis.LocationBody
	}
	return analysis.Location(in)
}

// analysedFormats are the corpus formats Analyze supports; every other
// format must be refused with an *UnsupportedFormatError naming it.
var analysedFormats = map[string]bool{
	"openapi3.0": true,
	"openapi3.1": true,
	"swagger2":   true,
	"postman2.0": true, "postman2.1": true,
}

// TestCorpus analyses every file of the shared corpus in a supported format and checks
// it against the manifest: no error, the operation count, the effective auth
// of every sample operation, the count of operations per auth signature, and
// that undeclared auth parameters are kept out of every tool's inputs.
func TestCorpus(t *testing.T) {
	m := loadManifest(t)
	var files, filesPassed, samples, samplesPassed, ops, opsMatched int
	for _, f := range m.Files {
		if !analysedFormats[f.Format] {
			continue
		}
		files++
		samples += len(f.SampleOperations)
		ops += f.Operations
		ok := t.Run(f.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, f.File))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			res, err := analysis.Analyze(data, analysis.Options{})
			if err != nil {
				t.Fatalf("analyze: %v", err)
			}
			if string(res.Format) != f.Format {
				t.Errorf("format = %q, want %q", res.Format, f.Format)
			}
			if len(res.Operations) != f.Operations {
				t.Errorf("operations = %d, want %d", len(res.Operations), f.Operations)
			}

			sig := signature
			if strings.HasPrefix(f.Format, "postman") {
				sig = postmanSignature
			}
			got := map[string]int{}
			for _, op := range res.Operations {
				got[sig(op)]++
			}
			for sig, n := range f.EffectiveAuthSummary {
				opsMatched += min(n, got[sig])
			}
			if !reflect.DeepEqual(got, f.EffectiveAuthSummary) {
				t.Errorf("effective auth summary:\n got %v\nwant %v", got, f.EffectiveAuthSummary)
			}

			for key, sample := range f.SampleOperations {
				op, found := findOperation(res, key)
				if !found {
					t.Errorf("sample operation %q not found", key)
					continue
				}
				var want [][]string
				var none string
				if json.Unmarshal(sample.Effective, &none) != nil || none != "none" {
					if err := json.Unmarshal(sample.Effective, &want); err != nil {
						t.Fatalf("sample %q: decode effective: %v", key, err)
					}
					for _, alt := range want {
						sort.Strings(alt)
					}
				}
				gotNames := effectiveNames(op)
				if len(want) == 0 && len(gotNames) == 0 || reflect.DeepEqual(gotNames, want) {
					samplesPassed++
				} else {
					t.Errorf("sample %q effective auth = %v, want %v", key, gotNames, want)
				}
				for _, alt := range op.Auth {
					for _, r := range alt {
						if r.CallerVisible {
							t.Errorf("sample %q: requirement %q is caller-visible", key, r.Scheme)
						}
					}
				}
			}

			var undeclared []manifestUndeclaredParam
			if err := decodeUndeclared(f, &undeclared); err != nil {
				t.Fatalf("decode undeclared_auth: %v", err)
			}
			for _, u := range undeclared {
				in := manifestLocation(u.In)
				excluded := 0
				for _, op := range res.Operations {
					for _, field := range op.Request.Fields {
						if field.In == in && strings.EqualFold(field.Name, u.Param) {
							t.Errorf("%s %s: undeclared auth parameter %s (%s) is a tool input", op.Method, op.Path, u.Param, in)
						}
					}
					assertNotInSchema(t, op, u.Param, in)
					if slices.ContainsFunc(op.Excluded, func(e analysis.ExcludedParam) bool {
						return e.In == in && strings.EqualFold(e.Name, u.Param)
					}) {
						excluded++
					}
				}
				if excluded != u.Operations {
					t.Errorf("undeclared auth parameter %s (%s) excluded on %d operations, want %d", u.Param, u.In, excluded, u.Operations)
				}
			}
		})
		if ok {
			filesPassed++
		}
	}
	if files == 0 {
		t.Fatal("the manifest lists no OpenAPI 3.x file")
	}
	t.Logf("corpus: %d/%d files passed; sample operations %d/%d; operations matching the auth summary %d/%d",
		filesPassed, files, samplesPassed, samples, opsMatched, ops)
}

// assertNotInSchema checks that a parameter is not a property of the tool's
// input schema, nor of a whole-body input.
func assertNotInSchema(t *testing.T, op analysis.Operation, param string, in analysis.Location) {
	t.Helper()
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(op.InputSchema, &schema); err != nil {
		t.Fatalf("%s %s: decode input schema: %v", op.Method, op.Path, err)
	}
	for _, field := range op.Request.Fields {
		if field.WholeBody && in == analysis.LocationBody {
			var body struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if json.Unmarshal(schema.Properties[field.Property], &body) == nil {
				if _, has := body.Properties[param]; has {
					t.Errorf("%s %s: credential body field %q is in the whole-body input", op.Method, op.Path, param)
				}
			}
		}
	}
}

// TestCorpusOtherFormatsRefused checks that every corpus file in a format
// Analyze does not support yet is refused with its detected format named.
func TestCorpusOtherFormatsRefused(t *testing.T) {
	m := loadManifest(t)
	for _, f := range m.Files {
		if analysedFormats[f.Format] {
			continue
		}
		t.Run(f.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, f.File))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			_, err = analysis.Analyze(data, analysis.Options{})
			var ufe *analysis.UnsupportedFormatError
			if !errors.As(err, &ufe) || !errors.Is(err, analysis.ErrUnsupportedFormat) {
				t.Fatalf("err = %v, want an *UnsupportedFormatError", err)
			}
			if string(ufe.Format) != f.Format {
				t.Errorf("format = %q, want %q", ufe.Format, f.Format)
			}
		})
	}
}
