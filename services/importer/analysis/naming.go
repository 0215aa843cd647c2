package analysis

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// minToolNameBudget leaves room for a disambiguating suffix.
const minToolNameBudget = 16

// snakeCase turns an identifier into lower snake_case over [a-z0-9_]: word
// boundaries at case changes (sendMessage → send_message, HTTPServer →
// http_server) and at every other character.
func snakeCase(s string) string {
	runes := []rune(s)
	var b strings.Builder
	pendingSep := false
	isUpper := func(r rune) bool { return r >= 'A' && r <= 'Z' }
	isLower := func(r rune) bool { return r >= 'a' && r <= 'z' }
	isDigit := func(r rune) bool { return r >= '0' && r <= '9' }
	for i, r := range runes {
		if !isUpper(r) && !isLower(r) && !isDigit(r) {
			pendingSep = true
			continue
		}
		if isUpper(r) && i > 0 {
			prev := runes[i-1]
			nextLower := i+1 < len(runes) && isLower(runes[i+1])
			if isLower(prev) || isDigit(prev) || (isUpper(prev) && nextLower) {
				pendingSep = true
			}
		}
		if pendingSep && b.Len() > 0 {
			b.WriteByte('_')
		}
		pendingSep = false
		if isUpper(r) {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// baseToolName is an operation's name before disambiguation: its operationId
// in snake_case, else its method and path; cut to budget with a suffix derived
// from the full name so that two long names stay apart.
func baseToolName(operationID, method, path string, budget int) (name string, fromID bool) {
	name = snakeCase(operationID)
	fromID = name != ""
	if !fromID {
		name = snakeCase(strings.ToLower(method) + " " + path)
	}
	if name == "" {
		name = "operation"
	}
	if len(name) > budget {
		name = withSuffix(name, digest(name)[:6], budget)
	}
	return name, fromID
}

// withSuffix appends "_"+suffix to name, cutting name so that the result fits
// in budget.
func withSuffix(name, suffix string, budget int) string {
	keep := budget - len(suffix) - 1
	if keep < 1 {
		keep = 1
	}
	if len(name) > keep {
		name = strings.TrimRight(name[:keep], "_")
	}
	return name + "_" + suffix
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// nameCandidate is one operation's claim on a tool name.
type nameCandidate struct {
	base     string
	fromID   bool
	identity string // "METHOD path", stable across re-imports
}

// assignToolNames makes names unique. Within a group of operations that share
// a base name, the first one named by its operationId (else the first one in
// document order: path, then method) keeps the base name; every other one
// gets a suffix derived from its own method and path, so its name does not
// depend on the order or presence of other operations.
func assignToolNames(cands []nameCandidate, budget int) []string {
	names := make([]string, len(cands))
	winner := map[string]int{}
	for i, c := range cands {
		w, ok := winner[c.base]
		if !ok || (c.fromID && !cands[w].fromID) {
			winner[c.base] = i
		}
	}
	taken := map[string]bool{}
	for base, i := range winner {
		names[i] = base
		taken[base] = true
	}
	for i, c := range cands {
		if winner[c.base] == i {
			continue
		}
		h := digest(c.identity)
		name := ""
		for n := 6; n <= len(h); n += 2 {
			if cand := withSuffix(c.base, h[:n], budget); !taken[cand] {
				name = cand
				break
			}
		}
		for k := 2; name == ""; k++ {
			if cand := withSuffix(c.base, strconv.Itoa(k), budget); !taken[cand] {
				name = cand
			}
		}
		taken[name] = true
		names[i] = name
	}
	return names
}

// trimTo cuts s to at most max bytes on a rune boundary, marking the cut
// with an ellipsis.
func trimTo(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	if max <= len(ellipsis) {
		return cutRunes(s, max)
	}
	return strings.TrimRight(cutRunes(s, max-len(ellipsis)), " \t\r\n") + ellipsis
}

func cutRunes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// toolDescription joins an operation's summary and description, trimmed to
// budget; the method and path when both are empty.
func toolDescription(summary, description, method, path string, budget int) string {
	summary, description = strings.TrimSpace(summary), strings.TrimSpace(description)
	var text string
	switch {
	case summary != "" && description != "" && summary != description:
		text = summary + "\n\n" + description
	case summary != "":
		text = summary
	case description != "":
		text = description
	default:
		text = method + " " + path
	}
	return trimTo(text, budget)
}
