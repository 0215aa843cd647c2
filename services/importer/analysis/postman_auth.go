package analysis

import (
	"regexp"
	"strconv"
	"strings"
)

// AuthFromFolder: a Postman request inherits the auth of an enclosing folder.
// The other sources keep their meaning for Postman: AuthFromOperation is the
// request's own auth (an explicit `noauth` makes it public), AuthFromDocument
// the collection's, and AuthNone says that no auth is set on the chain.
const AuthFromFolder AuthSource = "folder"

// pmAuthMode says what an auth object does to the requests below it.
type pmAuthMode int

const (
	// pmAuthInherit: absent, null or `inherit`; the parent's auth applies.
	pmAuthInherit pmAuthMode = iota
	// pmAuthNone: `noauth`; no auth, whatever the parents set.
	pmAuthNone
	// pmAuthScheme: a requirement of scheme.
	pmAuthScheme
)

// pmAuth is an auth object as the requests below it see it.
type pmAuth struct {
	mode   pmAuthMode
	scheme *Scheme
}

// pmEffective is the auth a request gets from its chain.
type pmEffective struct {
	auth   pmAuth
	source AuthSource
}

// requirements renders the effective auth as alternatives of requirements.
func (e pmEffective) requirements() [][]Requirement {
	if e.auth.mode != pmAuthScheme || e.auth.scheme == nil {
		return [][]Requirement{}
	}
	s := e.auth.scheme
	return [][]Requirement{{{Scheme: s.Name, Kind: s.Kind, In: s.In, Param: s.Param, Scopes: []string{}}}}
}

// inherit returns the effective auth below an object whose own auth is own,
// declared at source.
func (e pmEffective) inherit(own pmAuth, source AuthSource) pmEffective {
	if own.mode == pmAuthInherit {
		return e
	}
	return pmEffective{auth: own, source: source}
}

// postmanKinds maps every Postman auth type to a kind.
var postmanKinds = map[string]Kind{
	"apikey":   KindAPIKey,
	"bearer":   KindHTTPBearer,
	"basic":    KindHTTPBasic,
	"digest":   KindHTTPDigest,
	"oauth1":   KindOAuth1,
	"oauth2":   KindOAuth2,
	"hawk":     KindHMAC,
	"edgegrid": KindHMAC,
	"akamai":   KindHMAC,
	"ntlm":     KindHTTPOther,
	"jwt":      KindHTTPOther,
	"asap":     KindHTTPOther,
	"awsv4":    KindAWSSigV4,
}

// postmanHTTPSchemes are the Authorization schemes of the Postman types that
// send one.
var postmanHTTPSchemes = map[string]string{
	"bearer": "Bearer",
	"basic":  "Basic",
	"digest": "Digest",
	"ntlm":   "NTLM",
	"hawk":   "Hawk",
	"oauth1": "OAuth",
	"awsv4":  "AWS4-HMAC-SHA256",
	"oauth2": "Bearer",
	"jwt":    "Bearer",
	"asap":   "Bearer",
}

// postmanGrantTypes maps an oauth2 grant_type to a flow type.
var postmanGrantTypes = map[string]string{
	"authorization_code":           "authorizationCode",
	"authorization_code_with_pkce": "authorizationCode",
	"implicit":                     "implicit",
	"password_credentials":         "password",
	"password":                     "password",
	"client_credentials":           "clientCredentials",
}

// postmanCredentialFields are the auth parameters that hold credential
// material. They are never read; a literal value in one is reported.
var postmanCredentialFields = map[string]bool{
	"username": true, "user": true, "password": true, "token": true, "accesstoken": true,
	"refreshtoken": true, "idtoken": true, "value": true, "consumerkey": true, "consumersecret": true,
	"tokensecret": true, "privatekey": true, "clientid": true, "clientsecret": true, "clienttoken": true,
	"authid": true, "authkey": true, "accesskey": true, "secretkey": true, "sessiontoken": true,
	"secret": true, "kid": true,
}

// postmanVariable matches a {{variable}} reference.
var postmanVariable = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// variableName accepts the names of variables that a result may record.
var variableName = regexp.MustCompile(`^[A-Za-z0-9_.$-]{1,64}$`)

// maxSchemeVariables bounds the variable names recorded for one scheme.
const maxSchemeVariables = 32

// authParams normalises the parameters of an auth type: an object in v2.0, an
// array of {key, value} in v2.1. Only the keys and the few non-secret settings
// are ever read from it.
func (p *postmanAnalyzer) authParams(v pmValue) (map[string]pmValue, error) {
	out := map[string]pmValue{}
	switch x := v.v.(type) {
	case nil:
	case map[string]any:
		p.objectStyle++
		for _, k := range sortedKeys(x) {
			out[k] = v.at(k)
		}
	case []any:
		p.arrayStyle++
		for i := range x {
			e := v.index(i)
			if _, ok := e.object(); !ok {
				return nil, invalidAt(p.src, e.ptr, "an auth parameter must be an object with a key and a value")
			}
			key, ok := e.at("key").v.(string)
			if !ok {
				continue
			}
			out[key] = e.at("value")
		}
	default:
		return nil, invalidAt(p.src, v.ptr, "auth parameters must be an object or an array")
	}
	return out, nil
}

// auth reads an auth object: its mode, and for a requirement the scheme it
// names. It records which variables the auth refers to, never a value.
func (p *postmanAnalyzer) auth(v pmValue) (pmAuth, error) {
	if v.absent() {
		return pmAuth{mode: pmAuthInherit}, nil
	}
	if _, ok := v.object(); !ok {
		return pmAuth{}, invalidAt(p.src, v.ptr, "auth must be an object")
	}
	tv := v.at("type")
	typ, ok := tv.v.(string)
	if !ok {
		if tv.absent() {
			return pmAuth{}, invalidAt(p.src, v.ptr, "auth has no type")
		}
		return pmAuth{}, invalidAt(p.src, tv.ptr, "auth type must be a string")
	}
	written := strings.TrimSpace(typ)
	typ = strings.ToLower(written)
	switch typ {
	case "inherit":
		return pmAuth{mode: pmAuthInherit}, nil
	case "noauth":
		return pmAuth{mode: pmAuthNone}, nil
	}
	paramsValue := v.at(written)
	if paramsValue.absent() {
		paramsValue = v.at(typ)
	}
	params, err := p.authParams(paramsValue)
	if err != nil {
		return pmAuth{}, err
	}
	s := p.classifyAuth(typ, params, v.ptr)
	vars, literal := authMaterial(params)
	if literal {
		p.add(Diagnostic{Level: LevelInfo, Pointer: v.ptr,
			Message: trimMessage("postman " + s.Type + " auth holds literal credential values; they are not recorded and must be supplied by a credential binding")})
	}
	return pmAuth{mode: pmAuthScheme, scheme: p.register(s, vars)}, nil
}

// classifyAuth builds the scheme of an auth type from its non-secret
// settings: placement, parameter name and, for OAuth 2.0, the flow.
func (p *postmanAnalyzer) classifyAuth(typ string, params map[string]pmValue, pointer string) *Scheme {
	s := &Scheme{Name: typ, Type: typ, Kind: KindUnknown}
	kind, known := postmanKinds[typ]
	if !known {
		s.Name = sanitizeKey(typ, 64)
		if s.Name == "" {
			s.Name = "unknown"
		}
		s.Type = s.Name
		p.warn(pointer, "auth type %q is not recognised; an operator must map it", trimTo(s.Name, 64))
		return s
	}
	s.Kind = kind
	s.HTTPScheme = postmanHTTPSchemes[typ]
	setting := func(name string) string {
		v, _ := params[name].v.(string)
		return strings.TrimSpace(v)
	}
	authorization := func() { s.In, s.Param = LocationHeader, "Authorization" }
	switch typ {
	case "apikey":
		s.HTTPScheme = ""
		s.In = LocationHeader
		if strings.EqualFold(setting("in"), "query") {
			s.In = LocationQuery
		}
		key := setting("key")
		switch {
		case key == "":
			p.warn(pointer, "apikey auth names no parameter")
		case strings.Contains(key, "{{") || !isTokenName(key):
			p.warn(pointer, "apikey auth parameter name is not a plain name; it is not recorded")
		default:
			s.Param = key
		}
		if s.In == LocationHeader && strings.EqualFold(s.Param, "Authorization") {
			s.Kind = KindHTTPBearer
		}
	case "oauth1":
		if params["addParamsToHeader"].truthy() {
			authorization()
		} else {
			s.In = LocationQuery
		}
	case "oauth2":
		if strings.EqualFold(setting("addTokenTo"), "queryParams") {
			s.In, s.Param = LocationQuery, "access_token"
		} else {
			authorization()
		}
		if flow, ok := postmanGrantTypes[strings.ToLower(setting("grant_type"))]; ok {
			s.Flows = []Flow{{Type: flow, Scopes: []string{}}}
		}
	case "jwt":
		if strings.EqualFold(setting("addTokenTo"), "queryParam") {
			s.In, s.Param = LocationQuery, "token"
			if key := setting("queryParamKey"); key != "" && !strings.Contains(key, "{{") && isTokenName(key) {
				s.Param = key
			}
		} else {
			authorization()
		}
	case "awsv4":
		if params["addAuthDataToQuery"].truthy() {
			s.In = LocationQuery
		} else {
			authorization()
		}
	default:
		authorization()
	}
	return s
}

// isTokenName reports a plain header or query parameter name.
func isTokenName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// authMaterial lists the variables an auth's parameters refer to and reports
// whether a credential parameter holds a literal value. It returns names
// only: no value leaves this function.
func authMaterial(params map[string]pmValue) ([]string, bool) {
	seen := map[string]bool{}
	literal := false
	var visit func(v any)
	visit = func(v any) {
		switch x := v.(type) {
		case string:
			for _, m := range postmanVariable.FindAllStringSubmatch(x, -1) {
				if name := strings.TrimSpace(m[1]); variableName.MatchString(name) {
					seen[name] = true
				}
			}
		case map[string]any:
			for _, e := range x {
				visit(e)
			}
		case []any:
			for _, e := range x {
				visit(e)
			}
		}
	}
	for key, v := range params {
		visit(v.v)
		if s, ok := v.v.(string); ok && postmanCredentialFields[normalizeName(key)] &&
			strings.TrimSpace(postmanVariable.ReplaceAllString(s, "")) != "" {
			literal = true
		}
	}
	return sortedKeys(seen), literal
}

// schemeKey identifies schemes that one binding can serve.
func schemeKey(s *Scheme) string {
	var flows []string
	for _, f := range s.Flows {
		flows = append(flows, f.Type)
	}
	return strings.Join([]string{s.Type, string(s.Kind), string(s.In), s.Param, strings.Join(flows, ",")}, "\x00")
}

// register records a scheme once per type and placement, naming it after its
// Postman type ("basic"; "apikey_2" for a second placement of the same type),
// and remembers the variables it refers to.
func (p *postmanAnalyzer) register(s *Scheme, vars []string) *Scheme {
	key := schemeKey(s)
	have, ok := p.schemeByKey[key]
	if !ok {
		base := s.Name
		for i := 2; p.schemeByName[s.Name] != nil; i++ {
			s.Name = base + "_" + strconv.Itoa(i)
		}
		have = s
		p.schemeByKey[key] = s
		p.schemeByName[s.Name] = s
		p.schemeVars[s.Name] = map[string]bool{}
	}
	for _, v := range vars {
		if len(p.schemeVars[have.Name]) < maxSchemeVariables {
			p.schemeVars[have.Name][v] = true
		}
	}
	return have
}

// finishSchemes writes each scheme's description and returns the schemes
// sorted by name.
func (p *postmanAnalyzer) finishSchemes() []Scheme {
	out := make([]Scheme, 0, len(p.schemeByName))
	for _, name := range sortedKeys(p.schemeByName) {
		s := *p.schemeByName[name]
		desc := "Postman " + s.Type + " auth."
		if vars := sortedKeys(p.schemeVars[name]); len(vars) > 0 {
			desc += " Its credential values come from the variables " + strings.Join(vars, ", ") + "."
		}
		s.Description = trimTo(desc, schemeDescriptionBudget)
		out = append(out, s)
	}
	return out
}

// postmanCovers reports whether a request parameter carries the credential
// of a Postman scheme: its own placement, the Authorization header of HTTP
// schemes, SigV4's signing parameters, or OAuth 1.0's oauth_* parameters.
func postmanCovers(s *Scheme, name string, in Location) bool {
	if coversParam(s, name, in) {
		return true
	}
	switch s.Kind {
	case KindOAuth1:
		return (in == LocationQuery || in == LocationBody) && strings.HasPrefix(strings.ToLower(name), "oauth_") ||
			in == LocationHeader && strings.EqualFold(name, "Authorization")
	case KindHMAC, KindHTTPOther:
		return in == LocationHeader && strings.EqualFold(name, "Authorization")
	}
	return false
}
