package analysis

import (
	"maps"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi3"
)

// convertSecurityDefinitions converts Swagger 2.0 security definitions into
// OpenAPI 3 security schemes, which classifyScheme then classifies as it
// does for OpenAPI 3:
//   - basic becomes http basic;
//   - apiKey keeps its location and name (an apiKey named Authorization in a
//     header is then a bearer token, and one whose
//     x-amazon-apigateway-authtype is awsSigv4 is SigV4);
//   - oauth2 keeps its one flow, renamed as OpenAPI 3 names it (application
//     is clientCredentials, accessCode is authorizationCode; the OpenAPI 3
//     names are accepted too), with its URLs and scopes. A flow neither
//     defines leaves an oauth2 scheme without flows rather than refusing the
//     document;
//   - any other type is kept as written and classified unknown.
//
// Extensions (x-…) stay on the scheme; the description is kept. Nothing here
// is a credential: definitions say where one goes, never what it is.
func convertSecurityDefinitions(defs map[string]*openapi2.SecurityScheme) openapi3.SecuritySchemes {
	out := make(openapi3.SecuritySchemes, len(defs))
	for name, d := range defs {
		if d == nil {
			out[name] = nil
			continue
		}
		s := &openapi3.SecurityScheme{Description: d.Description, Extensions: extensionsOf(d.Extensions)}
		switch strings.ToLower(strings.TrimSpace(d.Type)) {
		case "basic":
			s.Type, s.Scheme = "http", "basic"
		case "apikey":
			s.Type, s.In, s.Name = "apiKey", d.In, d.Name
		case "oauth2":
			s.Type = "oauth2"
			s.Flows = swaggerFlows(d)
		default:
			s.Type = d.Type
		}
		out[name] = &openapi3.SecuritySchemeRef{Value: s}
	}
	return out
}

// swaggerFlows converts the single flow of a Swagger 2.0 oauth2 scheme.
func swaggerFlows(d *openapi2.SecurityScheme) *openapi3.OAuthFlows {
	scopes := make(map[string]string, len(d.Scopes))
	maps.Copy(scopes, d.Scopes)
	flows := &openapi3.OAuthFlows{}
	switch d.Flow {
	case "implicit":
		flows.Implicit = &openapi3.OAuthFlow{AuthorizationURL: d.AuthorizationURL, Scopes: scopes}
	case "password":
		flows.Password = &openapi3.OAuthFlow{TokenURL: d.TokenURL, Scopes: scopes}
	case "application", "clientCredentials":
		flows.ClientCredentials = &openapi3.OAuthFlow{TokenURL: d.TokenURL, Scopes: scopes}
	case "accessCode", "authorizationCode":
		flows.AuthorizationCode = &openapi3.OAuthFlow{AuthorizationURL: d.AuthorizationURL, TokenURL: d.TokenURL, Scopes: scopes}
	}
	return flows
}

// extensionsOf keeps the x-… members of a decoded object's extra members.
func extensionsOf(m map[string]any) map[string]any {
	var out map[string]any
	for k, v := range m {
		if strings.HasPrefix(k, "x-") {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}
