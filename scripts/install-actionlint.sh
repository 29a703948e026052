#!/usr/bin/env bash
# install-actionlint.sh - build actionlint (the GitHub Actions workflow linter) from its Go
# module into a cache outside the repository, and print the path of the binary.
#
#   "$(bash scripts/install-actionlint.sh)" .github/workflows/*.yml
#
# Same cache root and rules as scripts/install-pulumi.sh: Go's ordinary client fetches the
# module's source from the module proxy (checksums verified), compiles it here once (13 s
# measured on 2 cores), and a later run finds the cache entry and returns at once.
#
# Environment:
#   MEM0_ACTIONLINT_CACHE      the cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/mem0infra/actionlint)
#   MEM0_ACTIONLINT_REBUILD=1  build again even when the cache has this version
set -euo pipefail

version=v1.7.12  # docs/ci.md: bump here; the cache keeps one entry per version
module=github.com/rhysd/actionlint
cache_root=${MEM0_ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mem0infra/actionlint}
entry="$cache_root/$version"

say() { echo "install-actionlint: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [[ -f $entry/complete && ${MEM0_ACTIONLINT_REBUILD:-0} != 1 ]]; then
    echo "$entry/bin/actionlint"
    exit 0
fi
command -v go >/dev/null 2>&1 || die "Go is not installed: actionlint is built from its Go module
here (Go 1.24 or newer). Install Go, put it on PATH, and run this again."

# Never let Go fetch another toolchain: a too-old Go is an error to report, not a download.
export GOTOOLCHAIN=local CGO_ENABLED=0
say "building actionlint $version from its Go module into $entry"
work="$entry.partial.$$"
rm -rf "$work"
mkdir -p "$work/bin"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
GOBIN="$work/bin" go install -trimpath -ldflags "-s -w -X main.version=$version" \
    "$module/cmd/actionlint@$version"
"$work/bin/actionlint" -version >/dev/null || die "the built actionlint does not run"
echo "$version built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - started))s" > "$work/complete"
rm -rf "$entry"
mv "$work" "$entry"
trap - EXIT
say "done in $((SECONDS - started))s: $entry/bin/actionlint"
echo "$entry/bin/actionlint"
