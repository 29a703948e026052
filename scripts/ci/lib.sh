# shellcheck shell=bash
# lib.sh - sourced by the scripts of scripts/ci/: where things are, the Pulumi CLI, the
# plan's connection string. The workflows (.github/workflows/) and the tests
# (tests/e2e/test_ci_scripts.py) run the same scripts; docs/ci.md describes them.
#
# Environment:
#   MEM0_PROJECT_DIR  the Pulumi project (default: the repository)
#   MEM0_CI_OUT       where reports go (default: $RUNNER_TEMP/mem0infra-ci, else /tmp/...)
#   MEM0_PLAN_DSN     the connection string the plan reads the live catalog with (default:
#                     the stack's own databaseUrl, `pulumi config get databaseUrl`)
#   and Pulumi's own: PULUMI_ACCESS_TOKEN, or PULUMI_BACKEND_URL + PULUMI_CONFIG_PASSPHRASE.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
project=${MEM0_PROJECT_DIR:-$repo}
out=${MEM0_CI_OUT:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mem0infra-ci}
mkdir -p "$out"
export PULUMI_SKIP_UPDATE_CHECK=${PULUMI_SKIP_UPDATE_CHECK:-true}
python="$repo/.venv/bin/python"

ci_say() { echo "${0##*/}: $*" >&2; }
ci_die() { ci_say "ERROR: $*"; exit 2; }

# The stack name: one argument, a plain name (it becomes part of file names).
ci_stack() {
    [[ $# -eq 1 && $1 =~ ^[A-Za-z0-9_.-]+$ ]] || ci_die "usage: ${0##*/} STACK (a stack name)"
    printf '%s' "$1"
}

# The Pulumi CLI: the one on PATH (pulumi/actions installs it on GitHub's runners), else
# the one scripts/install-pulumi.sh builds into its cache.
ci_pulumi_on_path() {
    if ! command -v pulumi >/dev/null 2>&1; then
        PATH="$(bash "$repo/scripts/install-pulumi.sh"):$PATH"
        export PATH
    fi
}

# `pulumi ARGS --stack STACK` in the project, never prompting.
ci_pulumi() {
    local stack=$1
    shift
    pulumi "$@" --stack "$stack" --non-interactive --color never --cwd "$project"
}

# The plan command (python -m components plan), or nothing when this checkout lacks it.
ci_has_plan() {
    PYTHONPATH="$repo" "$python" -m components plan --help >/dev/null 2>&1
}

# Run the plan of STACK into MARKDOWN; its exit code: 0 no change, 1 changes, 2 could not run.
ci_plan() {
    local stack=$1 markdown=$2 dsn=${MEM0_PLAN_DSN:-}
    if [[ -z $dsn ]]; then
        dsn=$(ci_pulumi "$stack" config get databaseUrl) || return 2
    fi
    PYTHONPATH="$repo" "$python" -m components plan --stack "$stack" --project-dir "$project" \
        --dsn "$dsn" --markdown "$markdown"
}
