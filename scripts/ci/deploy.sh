#!/usr/bin/env bash
# deploy.sh STACK - `pulumi up` of STACK after a merge (.github/workflows/deploy.yml): no
# prompt, the SQL of each change as a diff in the log, the engine's exit code.
# Pulumi.yaml's `refresh: always` makes it read the live catalog first, so drift is healed.
set -uo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
stack=$(ci_stack "$@") || exit 2
ci_pulumi_on_path
ci_pulumi "$stack" up --yes --diff
