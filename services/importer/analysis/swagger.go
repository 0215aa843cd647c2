package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// loadSwagger2 turns a Swagger 2.0 document into the OpenAPI 3 model the
// analyzer runs on. No I/O: every external reference is refused.
//
// The document is read into a generic tree and normalised where kin-openapi's
// Swagger model cannot hold what real descriptions write (see
// normalizeSwagger), checked for what the conversion would refuse, decoded,
// and converted with openapi2conv. Security definitions are converted here
// rather than by openapi2conv, so that a scheme it would refuse (an unknown
// OAuth2 flow) is still listed and classified, and so that extensions such as
// x-amazon-apigateway-authtype stay on the scheme.
//
// The converted document's `openapi` field is the `swagger` version as
// written, so that the result reports the version of the description the
// operator imported.
func loadSwagger2(src *source) (doc *openapi3.T, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, &InvalidError{Msg: "the Swagger 2.0 converter could not process this document"}
		}
	}()
	tree, err := swaggerTree(src)
	if err != nil {
		return nil, err
	}
	root, ok := tree.(map[string]any)
	if !ok {
		return nil, &InvalidError{Msg: "a Swagger 2.0 document must be an object"}
	}
	normalizeSwagger(root, src.specVersion)
	if err := prepareSwaggerOperations(root, src); err != nil {
		return nil, err
	}
	if host, ok := root["host"].(string); ok && strings.ContainsAny(host, "/\\") {
		return nil, swaggerInvalid(src, []string{"host"}, "host must be a host name and optional port, without a scheme or a path")
	}

	data, err := json.Marshal(root)
	if err != nil {
		return nil, &InvalidError{Msg: "the document could not be re-encoded: " + trimMessage(err.Error())}
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(data, &doc2); err != nil {
		return nil, swaggerDecodeError(root, src)
	}

	definitions := doc2.SecurityDefinitions
	doc2.SecurityDefinitions = nil
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, location *url.URL) ([]byte, error) {
		return nil, &openapi3.DisallowedExternalRefError{Ref: location.String()}
	}
	doc, err = openapi2conv.ToV3WithLoader(&doc2, loader, nil)
	if err != nil {
		return nil, swaggerConvertError(err, src)
	}
	doc.OpenAPI = src.specVersion
	if doc.Components == nil {
		doc.Components = &openapi3.Components{}
	}
	doc.Components.SecuritySchemes = convertSecurityDefinitions(definitions)
	applyPrefixItems(doc)
	settleFormBodies(doc)
	return doc, nil
}

// swaggerConvertError turns an openapi2conv or loader error into an
// *InvalidError with a location in the Swagger document.
func swaggerConvertError(err error, src *source) error {
	var ext *openapi3.DisallowedExternalRefError
	if errors.As(err, &ext) {
		return loadError(err, src)
	}
	if m := unresolvedRef.FindStringSubmatch(err.Error()); m != nil {
		ref := swaggerRef(m[1])
		pointer, line := findRef(src, ref)
		return &InvalidError{Pointer: pointer, Line: line, Msg: fmt.Sprintf("unresolvable reference %q", trimTo(ref, 200))}
	}
	return loadError(err, src)
}

// swaggerRef turns a reference rewritten for OpenAPI 3 back into the form a
// Swagger 2.0 document writes, so that it can be found in the document.
func swaggerRef(ref string) string {
	for _, p := range [...][2]string{
		{"#/components/schemas/", "#/definitions/"},
		{"#/components/parameters/", "#/parameters/"},
		{"#/components/responses/", "#/responses/"},
		{"#/components/requestBodies/", "#/parameters/"},
	} {
		if rest, ok := strings.CutPrefix(ref, p[0]); ok {
			return p[1] + rest
		}
	}
	return ref
}

// swaggerInvalid is an *InvalidError at a location of the document.
func swaggerInvalid(src *source, tokens []string, msg string) error {
	pointer := pointerOf(tokens)
	return &InvalidError{Pointer: pointer, Line: pointerLine(src, pointer), Msg: msg}
}
