#!/usr/bin/env bash
# setup-postgres.sh - provision PostgreSQL 15 + pg_cron + pgvector + pgbouncer for the
# integration tests on Debian bookworm. Run as root.
#
# Idempotent: when everything is already present it prints nothing and exits 0. When it
# had to install or build something it prints one summary line at the end.
#
# pgvector is not packaged for bookworm, so it is compiled from the Debian *source* package
# of a newer suite (PGVECTOR_SUITE, default trixie). The source is fetched with a private,
# throwaway apt state so the machine's apt configuration and package lists stay untouched.
#
# Environment knobs:
#   MEM0_FORCE_PGVECTOR_BUILD=1  rebuild and reinstall pgvector even if it is present
#                                (used to exercise the build path on a provisioned machine;
#                                stop servers that have vector loaded first, since the live
#                                vector.so is overwritten in place).
#   MEM0_PGVECTOR_DESTDIR=<dir>  stage the pgvector install under <dir> (make DESTDIR=...)
#                                instead of the live PostgreSQL tree; for testing.
#   PGVECTOR_SUITE=<suite>       Debian suite that carries the pgvector source (default trixie).
set -euo pipefail

readonly PG_MAJOR=15
readonly PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
readonly PG_CONFIG="${PG_BIN}/pg_config"
readonly PGVECTOR_SUITE="${PGVECTOR_SUITE:-trixie}"

# Everything we did, for the one-line summary.
SUMMARY=()
# Temp dirs to remove on exit, whatever happens.
CLEANUP_DIRS=()

die() {
    echo "setup-postgres: ERROR: $*" >&2
    exit 1
}

cleanup() {
    local dir
    for dir in "${CLEANUP_DIRS[@]+"${CLEANUP_DIRS[@]}"}"; do
        rm -rf -- "$dir"
    done
}
trap cleanup EXIT

# Run a command with its output captured; show the output only if it fails, so the happy
# path stays quiet but failures are still diagnosable.
run_logged() {
    local what=$1
    shift
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        echo "setup-postgres: ERROR: ${what} failed; output:" >&2
        tail -n 40 "$log" >&2
        rm -f -- "$log"
        exit 1
    fi
    rm -f -- "$log"
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# "package:marker-file" pairs. The marker is a cheap first check; dpkg is the fallback so
# a package installed in a non-standard way still counts.
readonly REQUIRED_PACKAGES=(
    "postgresql-${PG_MAJOR}:${PG_BIN}/postgres"
    "postgresql-${PG_MAJOR}-cron:/usr/lib/postgresql/${PG_MAJOR}/lib/pg_cron.so"
    "postgresql-server-dev-${PG_MAJOR}:/usr/include/postgresql/${PG_MAJOR}/server/postgres.h"
    "pgbouncer:/usr/sbin/pgbouncer"
    "make:/usr/bin/make"
    "gcc:/usr/bin/gcc"
    # gcc only *recommends* libc headers, and we install without recommends.
    "libc6-dev:/usr/include/stdio.h"
)

missing_packages() {
    local entry pkg marker
    for entry in "${REQUIRED_PACKAGES[@]}"; do
        pkg=${entry%%:*}
        marker=${entry#*:}
        if [[ ! -e $marker ]] && ! pkg_installed "$pkg"; then
            echo "$pkg"
        fi
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && return 0
    [[ $EUID -eq 0 ]] || die "must run as root to install: ${missing[*]}"
    run_logged "apt-get update" apt-get update -qq
    run_logged "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    SUMMARY+=("installed ${missing[*]}")
}

codename() {
    # shellcheck disable=SC1091  # system file, sourced in a subshell for one variable
    (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

# Print the main archive's "URI<TAB>components<TAB>signed-by" from deb822 sources: the first
# enabled "deb" stanza whose Suites contain the bare codename (so -security is skipped).
# Multi-line (inline key) Signed-By values are not reusable here and are dropped.
deb822_archive() {
    local suite=$1
    shift
    awk -v suite="$suite" '
        function flush() {
            if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") \
                && enabled != "no" && uris != "") {
                split(uris, u, " ")
                printf "%s\t%s\t%s\n", u[1], comps, signed
                found = 1
            }
            types = uris = suites = comps = signed = enabled = ""
        }
        FNR == 1 { flush() }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { next }
        {
            key = tolower($1); sub(/:$/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "components") comps = val
            else if (key == "signed-by" && val ~ /^\//) signed = val
            else if (key == "enabled") enabled = tolower(val)
        }
        END { flush() }
    ' "$@"
}

# Same output for one-line "deb [opts] URI suite comps..." sources.list files.
legacy_archive() {
    local suite=$1
    shift
    awk -v suite="$suite" '
        $1 != "deb" || found { next }
        {
            signed = ""; i = 2
            if ($2 ~ /^\[/) {
                for (; i <= NF; i++) {
                    opt = $i; gsub(/[][]/, "", opt)
                    if (opt ~ /^signed-by=/) { sub(/^signed-by=/, "", opt); signed = opt }
                    if ($i ~ /\]$/) { i++; break }
                }
            }
            if ($(i + 1) != suite) next
            comps = ""
            for (j = i + 2; j <= NF && $j !~ /^#/; j++) comps = comps (comps ? " " : "") $j
            printf "%s\t%s\t%s\n", $i, comps, signed
            found = 1
        }
    ' "$@"
}

main_archive() {
    local suite=$1 found=""
    shopt -s nullglob
    local deb822=(/etc/apt/sources.list.d/*.sources)
    local legacy=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
    shopt -u nullglob
    # Each awk call prints at most one line, so no head(1) (and no SIGPIPE under pipefail).
    ((${#deb822[@]})) && found=$(deb822_archive "$suite" "${deb822[@]}")
    if [[ -z $found ]]; then
        mapfile -t legacy < <(for f in "${legacy[@]}"; do [[ -r $f ]] && echo "$f"; done)
        ((${#legacy[@]})) && found=$(legacy_archive "$suite" "${legacy[@]}")
    fi
    [[ -n $found ]] && echo "$found"
}

# Write a deb-src sources file for PGVECTOR_SUITE on the machine's own Debian mirror.
write_src_list() {
    local out=$1 suite archive uri comps signed
    suite=$(codename)
    [[ -n $suite ]] || die "cannot read VERSION_CODENAME from /etc/os-release"
    archive=$(main_archive "$suite") \
        || die "no 'deb' entry for suite '${suite}' in /etc/apt sources; cannot locate the mirror"
    IFS=$'\t' read -r uri comps signed <<<"$archive"
    {
        echo "Types: deb-src"
        echo "URIs: ${uri}"
        echo "Suites: ${PGVECTOR_SUITE}"
        echo "Components: ${comps:-main}"
        # An if, not &&: a false test as the group's last command would trip set -e.
        if [[ -n $signed ]]; then echo "Signed-By: ${signed}"; fi
    } >"$out"
}

# Download pgvector's Debian source into $1 using a private apt state: own sources file, own
# lists and caches, so neither /etc/apt nor /var/lib/apt/lists is touched.
fetch_pgvector_source() {
    local dest=$1 state
    state=$(mktemp -d)
    CLEANUP_DIRS+=("$state")
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    write_src_list "$state/pgvector.sources"
    local apt_opts=(
        -o "Dir::Etc::sourcelist=$state/pgvector.sources"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$state/lists"
        -o "Dir::Cache=$state/cache"
        # The private dirs are root-only; downloading as root avoids the _apt sandbox warning.
        -o "APT::Sandbox::User=root"
    )
    run_logged "apt-get update for the ${PGVECTOR_SUITE} source index" \
        apt-get update -qq "${apt_opts[@]}"
    (cd "$dest" && run_logged "apt-get source pgvector from ${PGVECTOR_SUITE}" \
        apt-get source -qq --download-only "${apt_opts[@]}" pgvector) \
        || die "could not obtain the pgvector source package from ${PGVECTOR_SUITE}"
}

build_pgvector() {
    local work tarball version destdir=${MEM0_PGVECTOR_DESTDIR:-}
    work=$(mktemp -d)
    CLEANUP_DIRS+=("$work")
    fetch_pgvector_source "$work"
    tarball=$(find "$work" -maxdepth 1 -name 'pgvector_*.orig.tar.*' | head -n 1)
    [[ -n $tarball ]] || die "pgvector source download produced no orig tarball"
    version=${tarball##*/pgvector_}
    version=${version%%.orig.tar.*}
    mkdir "$work/src"
    tar -xf "$tarball" -C "$work/src" --strip-components=1
    # OPTFLAGS="" drops pgvector's default -march=native so the .so runs on any x86-64 CI host.
    local make_vars=(OPTFLAGS="" PG_CONFIG="$PG_CONFIG")
    [[ -n $destdir ]] && make_vars+=(DESTDIR="$destdir")
    run_logged "pgvector ${version} build" make -C "$work/src" -j"$(nproc)" "${make_vars[@]}"
    run_logged "pgvector ${version} install" make -C "$work/src" install "${make_vars[@]}"
    SUMMARY+=("built pgvector ${version}${destdir:+ into ${destdir}}")
}

ensure_pgvector() {
    local control
    [[ -x $PG_CONFIG ]] || die "${PG_CONFIG} not found even after installing packages"
    control="$("$PG_CONFIG" --sharedir)/extension/vector.control"
    if [[ -e $control && ${MEM0_FORCE_PGVECTOR_BUILD:-0} != 1 ]]; then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "must run as root to build and install pgvector"
    build_pgvector
}

main() {
    install_packages
    ensure_pgvector
    if ((${#SUMMARY[@]})); then
        local line
        line=$(printf '%s; ' "${SUMMARY[@]}")
        echo "setup-postgres: ${line%; }"
    fi
}

# Guarded so the helpers can be sourced for ad-hoc testing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
