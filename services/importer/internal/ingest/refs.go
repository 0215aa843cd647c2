package ingest

import (
	"context"
	"net/url"

	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/fetch"
)

// RemoteRefNote begins the info diagnostic a review carries for each remote
// document a $ref was resolved from; the host and path follow, never the
// query string.
const RemoteRefNote = "remote $ref document resolved from "

// remoteRefs fetches the remote documents doc's $refs point to whose host
// cmd's fetch allowlist names, under the same rules and caps as the fetch
// of the description itself, and returns them keyed as analysis.Options
// wants them, with one info diagnostic each. References to other hosts are
// left out, so the analysis refuses them. Resolution is one level deep (see
// analysis.ExternalRefs). The referenced documents together may not exceed
// the maximum description size.
func (im *Importer) remoteRefs(ctx context.Context, cmd Command, doc []byte) (map[string][]byte, []analysis.Diagnostic, error) {
	if len(cmd.FetchAllowedHosts) == 0 && len(cmd.FetchAllowedPrefixes) == 0 {
		return nil, nil, nil
	}
	refs, err := analysis.ExternalRefs(doc)
	if err != nil {
		return nil, nil, analysisError(err)
	}
	if len(refs) == 0 {
		return nil, nil, nil
	}
	rules, err := fetch.Rules(cmd.FetchAllowedHosts, cmd.FetchAllowedPrefixes)
	if err != nil {
		return nil, nil, fetchError(err)
	}
	var (
		docs  map[string][]byte
		diags []analysis.Diagnostic
		total int64
	)
	for _, ref := range refs {
		u, err := fetch.ParseURL(ref)
		if err != nil || !rules.AllowsHost(u.Hostname(), portOf(u)) {
			continue
		}
		d, err := im.fetch.Fetch(ctx, fetch.Request{URL: ref, AllowedHosts: cmd.FetchAllowedHosts, AllowedPrefixes: cmd.FetchAllowedPrefixes})
		if err != nil {
			return nil, nil, fetchError(err)
		}
		total += int64(len(d.Body))
		if total > im.cfg.MaxDocumentBytes {
			return nil, nil, errcode.Errorf(errcode.TooLarge, "the documents that remote $refs point to exceed the limit of %d bytes in all", im.cfg.MaxDocumentBytes)
		}
		if docs == nil {
			docs = map[string][]byte{}
		}
		docs[ref] = d.Body
		diags = append(diags, analysis.Diagnostic{Level: analysis.LevelInfo, Message: RemoteRefNote + hostPath(u)})
	}
	return docs, diags, nil
}

// hostPath is u's host and path, trimmed: no scheme, query or fragment.
func hostPath(u *url.URL) string {
	s := u.Host + u.EscapedPath()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// portOf is u's port, defaulting to the scheme's.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}
