#!/usr/bin/env bash
# install-pulumi.sh - build the Pulumi CLI and a Python language host from Go modules into a
# cache outside the repository, and print the directory that holds them.
#
#   PATH="$(bash scripts/install-pulumi.sh):$PATH"
#
# The release is the one tools/pulumi/go.mod requires (github.com/pulumi/pulumi/pkg/v3),
# which is also requirements.txt's `pulumi==` pin. The build list is go.sum's, so every
# module is verified against its checksum. Nothing prebuilt is downloaded: the Go module
# proxy serves source, and `go build` compiles it here (5 min 31 s measured on 2 cores the
# first time; a second run finds the cache and returns at once). docs/engine.md has the details.
#
# What lands in the cache's bin/ (all four must sit together):
#   pulumi                         the CLI, stamped with its version
#   pulumi-language-python         this project's language host (tools/pulumi/cmd/...):
#                                  Pulumi's own is not served by the module proxy
#   pulumi-language-python-exec    Pulumi's program runner (module sdk/v3)
#   pulumi-resource-pulumi-python  Pulumi's dynamic-provider shim (module sdk/v3)
#
# Environment:
#   MEM0_PULUMI_CACHE   the cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/mem0infra/pulumi)
#   MEM0_PULUMI_REBUILD=1  build again even when the cache has this version
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
module_dir="$repo/tools/pulumi"
cache_root=${MEM0_PULUMI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mem0infra/pulumi}

say() { echo "install-pulumi: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# The release: what go.mod requires of pkg/v3 (read from the file: no network, no Go yet).
version=$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { print $2 }' "$module_dir/go.mod")
[[ $version == v3.* ]] || die "tools/pulumi/go.mod requires no github.com/pulumi/pulumi/pkg/v3"

# One cache entry per release and per source of the language host, so a change of either
# builds again and an old entry stays usable by an older checkout.
sources_hash=$(cd "$module_dir" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
entry="$cache_root/$version-$sources_hash"
bin="$entry/bin"

if [[ -f $entry/complete && ${MEM0_PULUMI_REBUILD:-0} != 1 ]]; then
    echo "$bin"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    die "Go is not installed, and the Pulumi CLI is built from its Go modules here. Install Go
$(awk '$1 == "go" { print $2 }' "$module_dir/go.mod") or newer (Debian bookworm's golang package is too old), put it on
PATH, and run this again. Or put an installed Pulumi CLI on PATH:
scripts/up.sh uses it when there is one."
fi
# Never let Go fetch another toolchain: a too-old Go is an error to report, not a download.
export GOTOOLCHAIN=local CGO_ENABLED=0
wanted_go=$(awk '$1 == "go" { print $2 }' "$module_dir/go.mod")
have_go=$(go env GOVERSION)
have_go=${have_go#go}
if [[ $(printf '%s\n%s\n' "$wanted_go" "$have_go" | sort -V | head -n 1) != "$wanted_go" ]]; then
    die "Go $have_go is too old: tools/pulumi/go.mod needs Go $wanted_go or newer"
fi

say "building the Pulumi CLI $version and its Python language host from Go modules"
say "into $entry (the first build takes about 6 minutes on 2 cores)"
work="$entry.partial.$$"
rm -rf "$work"
mkdir -p "$work/bin"
trap 'rm -rf "$work"' EXIT

# Pulumi's release flags (.goreleaser.yml): static, trimmed, version stamped with its `v`.
flags=(-mod=readonly -trimpath -tags osusergo,grpcnotrace
       -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version")
started=$SECONDS
(
    cd "$module_dir"
    say "downloading modules (go mod download; checksums from go.sum)"
    go mod download github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/sdk/v3
    say "compiling pulumi"
    go build "${flags[@]}" -o "$work/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    say "compiling pulumi-language-python"
    go build "${flags[@]}" -o "$work/bin/pulumi-language-python" ./cmd/pulumi-language-python
    # The two scripts of Pulumi's release tarball, from the sdk/v3 module at the same release.
    sdk=$(go list -mod=readonly -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    # Module files are read-only and not executable: copy with the mode the engine checks.
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" \
        "$sdk/python/dist/pulumi-resource-pulumi-python" "$work/bin/"
)
[[ $("$work/bin/pulumi" version) == "$version" ]] || die "the built CLI does not report $version"
echo "$version built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - started))s" > "$work/complete"
rm -rf "$entry"
mv "$work" "$entry"
trap - EXIT
say "done in $((SECONDS - started))s: $bin"
echo "$bin"
