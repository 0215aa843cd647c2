package analysis

import "encoding/json"

// Format names a kind of API description. The strings are stable: they appear
// in events, in stored results and in the output of `mcpgw inspect`.
type Format string

// Formats Analyze recognises. OpenAPI 3.0/3.1, Swagger 2.0 and Postman 2.0/2.1
// are analysed; the others are detected and refused with an
// *UnsupportedFormatError.
const (
	FormatOpenAPI30 Format = "openapi3.0"
	FormatOpenAPI31 Format = "openapi3.1"
	// FormatOpenAPI32 is read as far as kin-openapi reads 3.2: the QUERY
	// method and additionalOperations are operations like any other.
	FormatOpenAPI32 Format = "openapi3.2"
	FormatSwagger2  Format = "swagger2"
	FormatPostman10 Format = "postman1.0"
	FormatPostman20 Format = "postman2.0"
	FormatPostman21 Format = "postman2.1"
	FormatAsyncAPI  Format = "asyncapi"
	FormatUnknown   Format = "unknown"
)

// Kind is the kind of an upstream auth requirement. Each kind maps to one
// binding strategy of the credential broker; KindUnknown blocks a tool until an
// operator maps it.
type Kind string

// Auth kinds.
const (
	KindAPIKey        Kind = "apiKey"
	KindHTTPBearer    Kind = "http-bearer"
	KindHTTPBasic     Kind = "http-basic"
	KindHTTPDigest    Kind = "http-digest"
	KindHTTPOther     Kind = "http-other"
	KindOAuth2        Kind = "oauth2"
	KindOpenIDConnect Kind = "openIdConnect"
	KindMutualTLS     Kind = "mutualTLS"
	KindAWSSigV4      Kind = "awsSigV4"
	KindHMAC          Kind = "hmac"
	KindOAuth1        Kind = "oauth1"
	KindUnknown       Kind = "unknown"
)

// Location is where a value goes in an HTTP request.
type Location string

// Locations. LocationBody is a property of the request body object (or, for a
// Field with WholeBody set, the whole body).
const (
	LocationPath   Location = "path"
	LocationQuery  Location = "query"
	LocationHeader Location = "header"
	LocationCookie Location = "cookie"
	LocationBody   Location = "body"
)

// AuthSource says where an operation's effective auth requirement was declared.
type AuthSource string

// Auth sources.
const (
	// AuthFromOperation: the operation's own `security` (an empty list there
	// makes the operation explicitly public).
	AuthFromOperation AuthSource = "operation"
	// AuthFromDocument: inherited from the document's root `security`.
	AuthFromDocument AuthSource = "global"
	// AuthNone: neither the operation nor the document declares a requirement.
	AuthNone AuthSource = "none"
)

// Result is everything Analyze learned from one description; NewDocument
// maps it to the review document `mcpgw inspect -o json` prints. Slices encode
// as [] rather than null. A Result holds no secret: descriptions declare where credentials
// go, never their values.
type Result struct {
	// Format is the detected format: FormatOpenAPI30, FormatOpenAPI31,
	// FormatOpenAPI32,
	// FormatSwagger2, FormatPostman20 or FormatPostman21.
	Format Format `json:"format"`
	// SpecVersion is the `openapi` or `swagger` field as written (e.g.
	// "3.0.3", "2.0"), or the Postman collection version.
	SpecVersion string `json:"spec_version"`
	// Title and Version come from the document's info object.
	Title   string `json:"title"`
	Version string `json:"version"`
	// Servers are the document-level servers, variables resolved to defaults.
	Servers []Server `json:"servers"`
	// Schemes are the declared security schemes, sorted by name.
	Schemes []Scheme `json:"schemes"`
	// Operations are sorted by path, then by method in the order get, put,
	// post, delete, options, head, patch, trace.
	Operations []Operation `json:"operations"`
	// Diagnostics are findings that did not stop the analysis.
	Diagnostics []Diagnostic `json:"diagnostics"`
}

// Server is one base URL an operation can be sent to.
type Server struct {
	// URL has every variable replaced by its default value.
	URL string `json:"url"`
	// Template is the URL as written, set only when it has variables.
	Template    string           `json:"template,omitempty"`
	Description string           `json:"description,omitempty"`
	Variables   []ServerVariable `json:"variables,omitempty"`
}

// ServerVariable is one `{name}` of a server URL template.
type ServerVariable struct {
	Name        string   `json:"name"`
	Default     string   `json:"default"`
	Enum        []string `json:"enum,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Scheme is a declared security scheme, classified.
type Scheme struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Type is the scheme's `type` as declared (apiKey, http, oauth2, …).
	Type string `json:"type"`
	// HTTPScheme is the `scheme` of an http scheme as declared (Bearer, DPoP, …).
	HTTPScheme string `json:"http_scheme,omitempty"`
	// In and Param say where the credential goes: for an apiKey its `in` and
	// `name`; for bearer, basic, digest, other http schemes, oauth2, OpenID
	// Connect and SigV4 the Authorization header. Empty for mutualTLS.
	In    Location `json:"in,omitempty"`
	Param string   `json:"param,omitempty"`
	// Flows are an oauth2 scheme's flows, in the order implicit, password,
	// clientCredentials, authorizationCode.
	Flows []Flow `json:"flows,omitempty"`
	// Scopes are the scopes any flow offers, sorted and deduplicated.
	Scopes           []string `json:"scopes,omitempty"`
	BearerFormat     string   `json:"bearer_format,omitempty"`
	OpenIDConnectURL string   `json:"openid_connect_url,omitempty"`
	// Description is the scheme's description, trimmed to a budget.
	Description string `json:"description,omitempty"`
}

// Flow is one OAuth 2.0 flow of a scheme. Its URLs are as declared: the
// broker never takes a token URL from a description at call time; a binding
// manager confirms them.
type Flow struct {
	// Type is implicit, password, clientCredentials or authorizationCode.
	Type             string   `json:"type"`
	AuthorizationURL string   `json:"authorization_url,omitempty"`
	TokenURL         string   `json:"token_url,omitempty"`
	RefreshURL       string   `json:"refresh_url,omitempty"`
	Scopes           []string `json:"scopes"`
}

// Requirement is one credential an operation needs. It is always hidden from
// the caller: the gateway supplies it through a credential binding.
type Requirement struct {
	// Scheme is the declared scheme's name; empty for an inferred requirement
	// that no declared scheme describes.
	Scheme string   `json:"scheme"`
	Kind   Kind     `json:"kind"`
	In     Location `json:"in,omitempty"`
	Param  string   `json:"param,omitempty"`
	// Scopes are the OAuth scopes (or roles) the requirement names, as declared.
	Scopes []string `json:"scopes"`
	// CallerVisible is always false: no requirement is ever the caller's.
	CallerVisible bool `json:"caller_visible"`
	// Inferred is set on a requirement found from the operation's parameters
	// rather than from its declared security.
	Inferred bool `json:"inferred,omitempty"`
}

// Operation is one method on one path, with everything the gateway needs to
// execute it without the document. Its Tool fields are embedded, so the JSON
// object carries "tool" (the name), "description", "input_schema",
// "output_schema" and "annotations" beside the operation's own fields.
type Operation struct {
	// Method is upper case: GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE.
	Method string `json:"method"`
	// Path is the path template as written, e.g. /v1/messages/{id}.
	Path        string `json:"path"`
	OperationID string `json:"operation_id"`
	Tool
	// Auth is the effective requirement: a list of alternatives (any one
	// suffices), each a list of requirements applied together. [] means no
	// auth; an empty alternative means anonymous access is allowed.
	Auth       [][]Requirement `json:"auth"`
	AuthSource AuthSource      `json:"auth_source"`
	// InferredAuth are credentials the operation takes as parameters without a
	// declared scheme for them in Auth. Each is needed in addition to Auth.
	InferredAuth []Requirement `json:"inferred_auth"`
	// Servers are the operation's effective servers (operation, else path
	// item, else document; "/" when none is declared).
	Servers []Server `json:"servers"`
	// Request maps every tool input property to where it goes.
	Request Request `json:"request"`
	// Response says how the upstream's response maps to the tool's result.
	Response Response `json:"response"`
	// Excluded are the parameters kept out of the tool's inputs, and why.
	Excluded   []ExcludedParam `json:"excluded"`
	Deprecated bool            `json:"deprecated,omitempty"`
	Tags       []string        `json:"tags,omitempty"`
	// Unsupported says why the gateway cannot execute the operation, or is
	// empty. A tool is still generated so that names stay stable.
	Unsupported string `json:"unsupported"`
}

// Tool is the MCP tool generated for an operation.
type Tool struct {
	// Name is unique within the document, at most Options.ToolNameBudget
	// characters of [a-z0-9_].
	Name string `json:"tool"`
	// Description is the summary and description, trimmed to
	// Options.DescriptionBudget bytes.
	Description string `json:"description"`
	// InputSchema is a JSON Schema 2020-12 object schema of business fields
	// only: no credential and no gateway-controlled header.
	InputSchema json.RawMessage `json:"input_schema"`
	// OutputSchema is the object schema of the 2xx JSON response, when one is
	// declared; see Response.WrapProperty for non-object responses.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Annotations  Annotations     `json:"annotations"`
}

// Annotations are MCP tool annotations derived from the HTTP method. They are
// hints for clients, never a security control.
type Annotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    *bool  `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  *bool  `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// BodyMode says how tool inputs become the request body.
type BodyMode string

// Body modes.
const (
	// BodyNone: the request has no body.
	BodyNone BodyMode = "none"
	// BodyProperties: each body Field is a property of the body object.
	BodyProperties BodyMode = "properties"
	// BodyWhole: one Field (WholeBody set) carries the entire body, because
	// the body is not an object or its property names collide with parameters.
	BodyWhole BodyMode = "whole"
)

// Request maps tool inputs to an HTTP request.
type Request struct {
	// ContentType is the media type of the request body; empty without one.
	ContentType string   `json:"content_type,omitempty"`
	Body        BodyMode `json:"body"`
	// Fields list every property of the tool's input schema, in the order
	// path, query, header, cookie, body.
	Fields []Field `json:"fields"`
}

// Field maps one tool input property to its place in the request.
type Field struct {
	// Property is the input schema's property name.
	Property string   `json:"property"`
	In       Location `json:"in"`
	// Name is the wire name: the parameter's name or the body property's
	// name. Empty when WholeBody is set.
	Name      string `json:"name,omitempty"`
	WholeBody bool   `json:"whole_body,omitempty"`
	Required  bool   `json:"required"`
	// Style and Explode are the effective OpenAPI serialization of a
	// parameter (defaults applied); empty for body fields.
	Style         string `json:"style,omitempty"`
	Explode       *bool  `json:"explode,omitempty"`
	AllowReserved bool   `json:"allow_reserved,omitempty"`
	// ContentType is set for a parameter declared with `content`: its value
	// is serialized as that media type.
	ContentType string `json:"content_type,omitempty"`
}

// Response says how the upstream's response becomes the tool's result.
type Response struct {
	// Status is the response code whose schema is the output schema, e.g.
	// "200" or "2XX"; empty when no 2xx JSON response is declared.
	Status      string `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// WrapProperty is set when the response body is not an object: the
	// structured result is {WrapProperty: body}, as the output schema says.
	WrapProperty string `json:"wrap_property,omitempty"`
}

// ExclusionReason says why a parameter is not a tool input.
type ExclusionReason string

// Exclusion reasons.
const (
	// ExcludedSchemeCredential: the parameter carries the credential of a
	// scheme in the operation's effective requirement.
	ExcludedSchemeCredential ExclusionReason = "scheme-credential"
	// ExcludedInferredCredential: the parameter looks like a credential that
	// the effective requirement does not cover; see Operation.InferredAuth.
	ExcludedInferredCredential ExclusionReason = "inferred-credential"
	// ExcludedGatewayHeader: the gateway controls this header itself.
	ExcludedGatewayHeader ExclusionReason = "gateway-controlled"
	// ExcludedUndeclaredPathParam: a declared path parameter that the path
	// template does not use.
	ExcludedUndeclaredPathParam ExclusionReason = "not-in-path-template"
)

// ExcludedParam is a parameter kept out of a tool's inputs.
type ExcludedParam struct {
	Name   string          `json:"name"`
	In     Location        `json:"in"`
	Reason ExclusionReason `json:"reason"`
	// Scheme names the declared scheme the parameter belongs to, if any.
	Scheme string `json:"scheme,omitempty"`
}

// Level is a diagnostic's severity.
type Level string

// Diagnostic levels.
const (
	LevelWarning Level = "warning"
	LevelInfo    Level = "info"
)

// Diagnostic is a finding that did not stop the analysis. Messages are trimmed
// to a budget and quote no value from the document beyond names.
type Diagnostic struct {
	Level   Level  `json:"level"`
	Message string `json:"message"`
	// Pointer is the JSON pointer of the finding in the document, when known.
	Pointer string `json:"pointer,omitempty"`
}
