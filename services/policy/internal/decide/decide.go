// Package decide holds policy's decisions as pure functions: who may run an
// operator command, how a SpiceDB answer becomes a check outcome, and whether
// a tool can be served (every scheme of one auth alternative has an active
// binding and a strategy that serves its kind). It does no I/O.
package decide

import (
	"github.com/mcpgw/mcpgw/libs/bus"
	"regexp"
	"strings"

	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"

	"github.com/mcpgw/mcpgw/libs/errcode"
)

// Command decides whether actor may run the operator command named command
// in tenant. It is the one place operator permissions are decided: for now
// only a platform admin may run operator commands. It returns an
// *errcode.Error with code PermissionDenied on refusal; the message is safe
// to show to the caller.
func Command(actor *commonv1.Context, tenant, command string) error {
	if actor == nil {
		return errcode.New(errcode.PermissionDenied, "no actor")
	}
	if tenant == bus.UnattributedTenant {
		return errcode.New(errcode.PermissionDenied, "tenant name is reserved")
	}
	if actor.GetPlatformAdmin() {
		return nil
	}
	return errcode.New(errcode.PermissionDenied, "operator commands need a platform admin")
}

// Outcome is the result of a tool check, as recorded by the adapter's policy
// gate. Only Allowed lets a call through.
type Outcome string

// The outcomes of rpc.policy.check.
const (
	// Allowed: SpiceDB answered HAS_PERMISSION.
	Allowed Outcome = "allowed"
	// Denied: no grant.
	Denied Outcome = "denied"
	// Conditional: a caveat lacked context; a deny.
	Conditional Outcome = "conditional"
	// Unavailable: SpiceDB could not answer; a deny.
	Unavailable Outcome = "unavailable"
)

// Reasons that go with outcomes (recorded in audit, never shown to a caller
// as anything but the uniform refusal).
const (
	ReasonGranted        = "granted"
	ReasonNoGrant        = "no grant"
	ReasonMissingContext = "missing context"
	ReasonUnavailable    = "authorizer unavailable"
	ReasonUnknownTool    = "unknown tool"
	ReasonNoTenant       = "context names no tenant"
)

// Permissionship is SpiceDB's answer for one subject, independent of the
// SpiceDB client types.
type Permissionship int

// The answers of a permission check.
const (
	NoPermission Permissionship = iota
	HasPermission
	ConditionalPermission
)

// Combine turns the answers for the context's subjects (agent first, then
// user) into an outcome: any HasPermission allows; otherwise any
// ConditionalPermission is Conditional; otherwise Denied.
func Combine(answers ...Permissionship) (Outcome, string) {
	cond := false
	for _, a := range answers {
		switch a {
		case HasPermission:
			return Allowed, ReasonGranted
		case ConditionalPermission:
			cond = true
		}
	}
	if cond {
		return Conditional, ReasonMissingContext
	}
	return Denied, ReasonNoGrant
}

// Auth kinds the strategies of this release serve. A scheme of another kind
// cannot be satisfied yet, so an alternative that needs it is not servable.
var servedKinds = map[string]bool{"apiKey": true, "http-bearer": true, "http-basic": true}

// KindUnknown is the auth kind of a requirement the importer could not
// classify; a tool with one is blocked until an operator maps it.
const KindUnknown = "unknown"

// Served reports whether a binding strategy of this release serves kind.
func Served(kind string) bool { return servedKinds[kind] }

// Servable reports whether a tool can be called in an environment: it has no
// auth requirement, or at least one alternative that is empty or whose every
// scheme is of a served kind and has an active binding (hasBinding answers
// that for a scheme name). A tool with a scheme of kind "unknown" in any
// alternative is blocked. reason says why not, when not.
func Servable(spec *controlv1.ToolSpec, hasBinding func(scheme string) bool) (bool, string) {
	alts := spec.GetAuth()
	for _, alt := range alts {
		for _, s := range alt.GetSchemes() {
			if s.GetKind() == KindUnknown {
				return false, "unknown auth requirement"
			}
		}
	}
	if len(alts) == 0 {
		return true, ""
	}
	reason := "no active binding"
	for _, alt := range alts {
		ok := true
		for _, s := range alt.GetSchemes() {
			if !Served(s.GetKind()) {
				ok, reason = false, "no strategy serves "+s.GetKind()
				break
			}
			if !hasBinding(s.GetName()) {
				ok = false
				break
			}
		}
		if ok {
			return true, ""
		}
	}
	return false, reason
}

// toolNameRE is what a tool name must match to be approved and granted: it
// becomes part of a SpiceDB object ID, which allows no '.', '@' or space.
var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidToolName reports whether name may be approved, granted and checked.
func ValidToolName(name string) bool { return toolNameRE.MatchString(name) }

// ValidCommandName reports whether name looks like a command's protobuf full
// name (e.g. "mcpgw.rpc.v1.AddGrant").
func ValidCommandName(name string) bool {
	if name == "" || len(name) > 128 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
