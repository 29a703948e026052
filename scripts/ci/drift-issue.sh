#!/usr/bin/env bash
# drift-issue.sh STACK - one GitHub issue per stack for drift, opened or updated, never
# duplicated (.github/workflows/drift.yml runs it after drift.sh). The issue is found by
# its fixed title "Drift on stack STACK" among the open issues labelled mem0infra-drift.
#   drift (drift.sh wrote $MEM0_CI_OUT/drift-STACK.md): the issue's body becomes the report,
#     a new issue when none is open;
#   no drift: an open issue is closed with a comment saying so;
#   the check could not run: nothing changes (the job fails on drift.sh's exit code).
# Needs `gh` (on GitHub's runners) with GH_TOKEN and GH_REPO (or a checkout) set.
set -euo pipefail
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
stack=$(ci_stack "$@") || exit 2
command -v gh >/dev/null 2>&1 || ci_die "gh (the GitHub CLI) is not on PATH"

label=mem0infra-drift
title="Drift on stack $stack"
report="$out/drift-$stack.md"
found=$(cat "$out/drift-$stack.status" 2>/dev/null || echo missing)
if [[ $found != clean && $found != drift ]]; then
    ci_say "drift.sh did not finish on stack $stack ($found): the issues stay as they are"
    exit 0
fi
open_issue=$(gh issue list --state open --label "$label" --limit 100 --json number,title \
    --jq ".[] | select(.title == \"$title\") | .number" | head -n 1)

if [[ $found == drift ]]; then
    if [[ -n $open_issue ]]; then
        gh issue edit "$open_issue" --body-file "$report" >/dev/null
        ci_say "updated issue #$open_issue: $title"
    else
        gh label create "$label" --color D93F0B --force \
            --description "The live database differs from a stack (drift.yml)" >/dev/null
        gh issue create --title "$title" --label "$label" --body-file "$report"
        ci_say "opened an issue: $title"
    fi
elif [[ -n $open_issue ]]; then
    gh issue close "$open_issue" --comment "No drift on stack $stack any more: the scheduled check found the live database as the stack declares it." >/dev/null
    ci_say "closed issue #$open_issue: no drift on stack $stack"
else
    ci_say "no drift on stack $stack and no open issue"
fi
