#!/usr/bin/env bash
# drift.sh STACK - the scheduled drift check (.github/workflows/drift.yml): `pulumi refresh
# --preview-only --expect-no-changes` compares the stack's state with the live database and
# writes nothing. On drift it writes $MEM0_CI_OUT/drift-STACK.md: the drifted objects, the
# plan that `up` would run to heal them, and the refresh output.
# Exit 0 no drift, 1 drift (the report written), 2 the check could not run; the same as a
# word (clean, drift, error) in $MEM0_CI_OUT/drift-STACK.status for drift-issue.sh.
set -uo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
stack=$(ci_stack "$@") || exit 2
ci_pulumi_on_path

# The CLI's exit code of --expect-no-changes when the refresh would change something.
expect_no_changes_failed=7
refresh="$out/refresh-$stack.txt" plan="$out/plan-$stack.md" report="$out/drift-$stack.md"
status_file="$out/drift-$stack.status"
rm -f "$refresh" "$plan" "$report"
echo error > "$status_file"
ci_pulumi "$stack" refresh --preview-only --expect-no-changes 2>&1 | tee "$refresh"
status=${PIPESTATUS[0]}
if [[ $status -eq 0 ]]; then
    echo clean > "$status_file"
    ci_say "no drift on stack $stack"
    exit 0
fi
if [[ $status -ne $expect_no_changes_failed ]]; then
    ci_say "the refresh of stack $stack failed ($status): no drift report"
    exit 2
fi

plan_status=skipped
if ci_has_plan; then
    ci_plan "$stack" "$plan" >&2
    plan_status=$?
fi
"$python" "$repo/scripts/ci/report.py" drift --stack "$stack" --refresh "$refresh" \
    --plan "$plan" --plan-status "$plan_status" --output "$report"
echo drift > "$status_file"
ci_say "drift on stack $stack: $report"
exit 1
