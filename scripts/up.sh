#!/usr/bin/env bash
# The main job: `pulumi up` of the dev stack on its embedded PostgreSQL (pgserver, data
# under .pgdata/dev). Needs no database and no secret. Extra arguments go to `pulumi up`
# (e.g. `bash scripts/up.sh --yes`).
#
# Uses the `pulumi` on PATH when there is one; otherwise builds the CLI from Go modules
# into a cache outside the repository (scripts/install-pulumi.sh; minutes the first time).
# Not logged in to a backend: state goes to .pulumi-state/ (git-ignored) with the
# passphrase secrets provider (PULUMI_CONFIG_PASSPHRASE, empty unless you set it: the dev
# stack holds no secret). Leaves the embedded server running for mem0 and the next run;
# `.venv/bin/python -m components dev stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/venv.sh
if ! command -v pulumi >/dev/null 2>&1; then
    bin=$(bash scripts/install-pulumi.sh)
    export PATH="$bin:$PATH"
fi
export PULUMI_SKIP_UPDATE_CHECK=${PULUMI_SKIP_UPDATE_CHECK:-true}

if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami --non-interactive >/dev/null 2>&1; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
    export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
    echo "up.sh: not logged in to a Pulumi backend: state in .pulumi-state/" >&2
fi

# At a terminal: the preview as SQL diffs, then Pulumi's prompt. Otherwise (CI, a pipe):
# no prompt, and one line a resource rather than every object's SQL twice (preview, update).
if [ -t 0 ]; then
    interactive=() up_mode=(--diff)
else
    interactive=(--non-interactive) up_mode=(--non-interactive)
fi
pulumi stack select dev --create "${interactive[@]}"
pulumi up --stack dev "${up_mode[@]}" "$@"
echo
echo "Outputs of the dev stack (mem0Config's connection string: pulumi stack output" \
     "mem0Config --show-secrets --json):"
pulumi stack output --stack dev
