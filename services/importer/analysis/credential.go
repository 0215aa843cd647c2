package analysis

import "strings"

// normalizeName lowercases a parameter name and drops everything but letters
// and digits, so that X-API-Key, x_api_key and xApiKey compare equal.
func normalizeName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isCredentialName reports normalized names that carry a credential wherever
// they appear (query, header, cookie or a top-level body field).
func isCredentialName(n string) bool {
	switch n {
	case "apikey", "xapikey", "apitoken", "xapitoken",
		"apisecret", "apisecretkey", "appsecret", "secretkey",
		"accesstoken", "xaccesstoken", "token", "xtoken",
		"authtoken", "xauthtoken", "oauthtoken", "idtoken",
		"bearertoken", "sessiontoken", "xsessiontoken",
		"sessionid", "sessionkey", "authkey", "xauthkey",
		"clientsecret", "subscriptionkey", "ocpapimsubscriptionkey", "refreshtoken",
		"xfunctionskey", "privatetoken", "xprivatetoken", "jwt":
		return true
	}
	return false
}

// isPasswordName reports normalized names that carry a password.
func isPasswordName(n string) bool {
	switch n {
	case "password", "passwd", "pwd", "passphrase", "userpassword", "clientpassword", "xpassword":
		return true
	}
	return false
}

// hasCredentialSuffix reports normalized names that end like a credential
// (x-rapidapi-key, page_access_token, …). Pagination tokens such as
// next_page_token end otherwise and are left alone.
func hasCredentialSuffix(n string) bool {
	for _, suffix := range [...]string{"apikey", "apitoken", "authtoken", "accesstoken", "clientsecret", "apisecret", "secretkey"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// isSigV4Name reports the normalized request-signing parameters of AWS SigV4.
func isSigV4Name(n string) bool {
	switch n {
	case "xamzdate", "xamzalgorithm", "xamzcredential", "xamzsecuritytoken",
		"xamzsignature", "xamzsignedheaders", "xamzcontentsha256", "xamzexpires":
		return true
	}
	return false
}

// isGatewayHeader reports headers the gateway sets itself; a description that
// lists one as a parameter does not make it a tool input.
func isGatewayHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "content-type", "accept-encoding", "connection",
		"transfer-encoding", "cookie", "keep-alive", "te", "trailer", "upgrade", "proxy-connection":
		return true
	}
	return false
}

func isSigV4Param(name string) bool { return isSigV4Name(normalizeName(name)) }

// classifyCredential reports whether a parameter that no declared scheme
// describes looks like a credential, and of which kind. Path parameters are
// part of the resource's address and never classified.
func classifyCredential(name string, in Location) (Kind, bool) {
	n := normalizeName(name)
	if n == "" || in == LocationPath {
		return "", false
	}
	switch {
	case n == "authorization":
		if in == LocationHeader {
			return KindHTTPBearer, true
		}
		return KindAPIKey, true
	case n == "proxyauthorization":
		return KindUnknown, true
	case isSigV4Name(n):
		return KindAWSSigV4, true
	case isSignatureName(n, in):
		return KindHMAC, true
	case isCredentialName(n):
		return KindAPIKey, true
	case isPasswordName(n):
		// A user's password (an OAuth password-grant form, a login call):
		// a credential no strategy sends as-is, so it blocks the tool until
		// an operator maps it.
		return KindUnknown, true
	case n == "key" && in == LocationQuery:
		return KindAPIKey, true
	}
	if hasCredentialSuffix(n) {
		return KindAPIKey, true
	}
	if in == LocationCookie && isSessionCookie(n) {
		return KindAPIKey, true
	}
	return "", false
}

// isSignatureName reports request-signature parameters (x-jws-signature,
// X-Hub-Signature, sig). In a body, only exact names count: e-signature APIs
// have business fields such as signatureType.
func isSignatureName(n string, in Location) bool {
	switch n {
	case "signature", "sig", "xsignature", "xsig", "hmac", "xhmac":
		return true
	}
	return in == LocationHeader && (strings.Contains(n, "signature") || strings.Contains(n, "hmac"))
}

func isSessionCookie(n string) bool {
	return strings.Contains(n, "session") || strings.HasSuffix(n, "sid") || strings.HasSuffix(n, "sessid") ||
		strings.Contains(n, "auth") || strings.Contains(n, "token") || strings.Contains(n, "jwt")
}

// coversParam reports whether a declared scheme is what a parameter carries.
func coversParam(s *Scheme, name string, in Location) bool {
	if s.In != "" && s.Param != "" && s.In == in {
		if in == LocationHeader && strings.EqualFold(s.Param, name) {
			return true
		}
		if s.Param == name {
			return true
		}
	}
	switch s.Kind {
	case KindHTTPBearer, KindHTTPBasic, KindHTTPDigest, KindHTTPOther, KindOAuth2, KindOpenIDConnect:
		return in == LocationHeader && strings.EqualFold(name, "Authorization")
	case KindAWSSigV4:
		return (in == LocationHeader && strings.EqualFold(name, "Authorization")) ||
			((in == LocationHeader || in == LocationQuery) && isSigV4Param(name))
	}
	return false
}
