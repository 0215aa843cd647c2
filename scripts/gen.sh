#!/usr/bin/env bash
# Generates code from proto/ with the pinned buf (.bin/buf, from `make deps`)
# when proto/buf.gen.yaml exists.
#
#   scripts/gen.sh           regenerate in place
#   scripts/gen.sh --check   generate into a temporary directory and fail if
#                            any generated file differs from the tree, is
#                            missing, or is stale (a "Code generated" file
#                            under an output directory that buf no longer
#                            produces). The tree is not modified.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

check=0
case "${1:-}" in
"") ;;
--check) check=1 ;;
*)
	echo "usage: scripts/gen.sh [--check]" >&2
	exit 2
	;;
esac

template="$root/proto/buf.gen.yaml"
if [ ! -f "$template" ]; then
	echo "gen: no proto/buf.gen.yaml, nothing to generate"
	exit 0
fi
buf="$root/.bin/buf"
if [ ! -x "$buf" ]; then
	echo "gen: $buf is missing: run \`make deps\`" >&2
	exit 1
fi
# Local plugins (protoc-gen-go) are the pinned ones in .bin/.
export PATH="$root/.bin:$PATH"

if [ "$check" -eq 0 ]; then
	(cd proto && "$buf" generate)
	echo "gen: ok"
	exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# buf prepends -o to every out directory of the template; a deep base keeps
# outputs such as ../libs/gen inside $tmp.
base="$tmp/b/b/b/b"
mkdir -p "$base"
(cd proto && "$buf" generate -o "$base")

status=0
declare -A generated=()
while IFS= read -r -d '' file; do
	rel="$(realpath -m --relative-to="$base" "$file")"
	target="$(realpath -m "$root/proto/$rel")"
	generated["$target"]=1
	if [ ! -f "$target" ]; then
		echo "gen: missing: ${target#"$root"/}" >&2
		status=1
	elif ! cmp -s "$file" "$target"; then
		echo "gen: out of date: ${target#"$root"/}" >&2
		status=1
	fi
done < <(find "$tmp" -type f -print0)

# Stale files: generated files under an output directory that buf no longer
# writes.
while IFS= read -r out; do
	[ -n "$out" ] || continue
	dir="$(realpath -m "$root/proto/$out")"
	[ -d "$dir" ] || continue
	while IFS= read -r -d '' file; do
		if [ -z "${generated[$file]:-}" ] && head -n 5 "$file" | grep -q '^// Code generated .* DO NOT EDIT\.$'; then
			echo "gen: stale: ${file#"$root"/}" >&2
			status=1
		fi
	done < <(find "$dir" -type f -print0)
done < <(sed -n 's/^[[:space:]]*out:[[:space:]]*["'\'']\{0,1\}\([^"'\'' #]*\).*$/\1/p' "$template")

if [ "$status" -ne 0 ]; then
	echo "gen: generated code differs from the tree: run \`make gen\` and commit the result" >&2
	exit 1
fi
echo "gen: generated code is up to date"
