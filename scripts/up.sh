#!/usr/bin/env bash
# The main job: `pulumi up` of the dev stack on its embedded PostgreSQL (pgserver, data
# under .pgdata/dev). Needs no database and no secret; needs the Pulumi CLI.
# Extra arguments go to `pulumi up` (e.g. `bash scripts/up.sh --yes`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/venv.sh
if ! command -v pulumi >/dev/null 2>&1; then
    cat >&2 <<'MSG'
up.sh: the Pulumi CLI is not installed, and the Python package does not include it.
Install it (https://www.pulumi.com/docs/iac/download-install/), then run this again.
Without the CLI you can still see exactly what the dev stack deploys:
    .venv/bin/python -m components render --stack dev
and run the whole deployment cycle against a real PostgreSQL with the tests:
    bash scripts/test.sh
MSG
    exit 127
fi
# Not logged in to a backend: keep dev state in the repository (git-ignored).
if ! pulumi whoami >/dev/null 2>&1; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
    export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
fi
pulumi stack select dev --create --non-interactive
pulumi up --stack dev --diff "$@"
