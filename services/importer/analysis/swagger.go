package analysis

import "github.com/getkin/kin-openapi/openapi3"

// loadSwagger2 turns a Swagger 2.0 document into the OpenAPI 3 model the
// analyzer runs on. Swagger 2.0 is detected and refused for now.
func loadSwagger2(src *source) (*openapi3.T, error) {
	return nil, &UnsupportedFormatError{Format: src.format}
}
