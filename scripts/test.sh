#!/usr/bin/env bash
# Runs gofmt, go vet and go test over every module of go.work (`./...` at the
# root covers none), prints a summary, and exits non-zero if anything failed.
# The output ends with go test's own result lines for every package.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

timeout="${GO_TEST_TIMEOUT:-20m}"
mapfile -t modules < <(go list -m -f '{{.Dir}}')
if [ "${#modules[@]}" -eq 0 ]; then
	echo "test: go list -m found no modules" >&2
	exit 1
fi

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT
summary=()
failed=0
record() { # record <status> <step>
	summary+=("$(printf '%-4s %s' "$1" "$2")")
	if [ "$1" != "ok" ]; then failed=1; fi
}

# has_packages reports whether the module in $1 holds any Go package.
has_packages() {
	[ -n "$(cd "$1" && go list -e ./... 2>/dev/null)" ]
}

echo "=== gofmt"
# testdata may hold deliberately malformed Go files.
unformatted="$(find "${modules[@]}" -name '*.go' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"
if [ -n "$unformatted" ]; then
	echo "$unformatted" | sed "s|^$root/||; s|^|not gofmt-ed: |"
	record FAIL "gofmt -l: $(echo "$unformatted" | wc -l) file(s) not formatted (run \`make fmt\`)"
else
	record ok "gofmt -l"
fi

for dir in "${modules[@]}"; do
	rel="${dir#"$root"/}"
	if ! has_packages "$dir"; then
		record ok "$rel: no Go packages"
		continue
	fi
	echo "=== go vet: $rel"
	if (cd "$dir" && go vet ./...); then
		record ok "$rel: go vet"
	else
		record FAIL "$rel: go vet"
	fi
done

results="$logdir/results"
: >"$results"
for dir in "${modules[@]}"; do
	rel="${dir#"$root"/}"
	has_packages "$dir" || continue
	echo "=== go test: $rel"
	log="$logdir/$(echo "$rel" | tr '/' '_').log"
	(cd "$dir" && go test -count=1 -timeout "$timeout" ./...) 2>&1 | tee "$log"
	if [ "${PIPESTATUS[0]}" -eq 0 ]; then
		record ok "$rel: go test"
	else
		record FAIL "$rel: go test"
	fi
	grep -E '^(ok|FAIL|---|panic:|\?)[[:space:]]' "$log" >>"$results" || true
done

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo
echo "=== go test results"
cat "$results"
if [ "$failed" -ne 0 ]; then
	echo "FAIL"
	exit 1
fi
echo "PASS"
