#!/usr/bin/env bash
# Installs what the tests and the local stack need, and does nothing that is
# already done: Debian's clickhouse-server, and the tools pinned in
# tools/pinned (built into .bin/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

clickhouse_present() {
	command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || [ -x /usr/bin/clickhouse-server ]
}

install_cmd='apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client'

if ! clickhouse_present; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "deps: installing clickhouse-server and clickhouse-client"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client
	else
		echo "deps: clickhouse-server is missing; install it as root with:" >&2
		echo "  sudo sh -c '$install_cmd'" >&2
		exit 1
	fi
fi
if ! clickhouse_present; then
	echo "deps: clickhouse-server still missing after install" >&2
	exit 1
fi

# tool_name prints the binary name go build would choose for a package path:
# its last element, or the one before a major-version suffix (/v2).
tool_name() {
	local pkg="$1" base
	base="${pkg##*/}"
	if [[ "$base" =~ ^v[0-9]+$ ]]; then
		base="${pkg%/*}"
		base="${base##*/}"
	fi
	printf '%s\n' "$base"
}

mkdir -p "$root/.bin"
pinned="$root/tools/pinned"
tools="$(cd "$pinned" && GOWORK=off go list tool)"
for pkg in $tools; do
	name="$(tool_name "$pkg")"
	out="$root/.bin/$name"
	if [ -x "$out" ] && [ "$out" -nt "$pinned/go.sum" ] && [ "$out" -nt "$pinned/go.mod" ]; then
		continue
	fi
	echo "deps: building $name ($pkg)"
	(cd "$pinned" && GOWORK=off go build -o "$out" "$pkg")
done
echo "deps: ok"
