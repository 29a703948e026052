#!/usr/bin/env bash
# preview.sh STACK - what a pull request would change on STACK: `pulumi preview --diff`
# (the SQL of each object as a diff) and the plan (python -m components plan: per object
# the SQL, its hazards and the access changes), written as one Markdown comment to
# $MEM0_CI_OUT/comment-STACK.md for the workflow to post (.github/workflows/preview.yml).
# Exit 0 when both ran (whether or not they found changes); non-zero when either could not.
set -uo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
stack=$(ci_stack "$@") || exit 2
ci_pulumi_on_path

preview="$out/preview-$stack.txt" plan="$out/plan-$stack.md"
rm -f "$preview" "$plan"
ci_pulumi "$stack" preview --diff 2>&1 | tee "$preview"
preview_status=${PIPESTATUS[0]}

plan_status=skipped
if ci_has_plan; then
    ci_plan "$stack" "$plan" >&2
    plan_status=$?
fi
"$python" "$repo/scripts/ci/report.py" comment --stack "$stack" --preview "$preview" \
    --preview-status "$preview_status" --plan "$plan" --plan-status "$plan_status" \
    --output "$out/comment-$stack.md"
ci_say "comment: $out/comment-$stack.md"

[[ $preview_status -eq 0 ]] || exit "$preview_status"
[[ $plan_status != 2 ]] || exit 2
exit 0
