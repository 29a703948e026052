#!/usr/bin/env bash
# Create .venv and install requirements.txt into it; quiet and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    # requirements.txt's "# no-deps: NAME==VERSION" lines: packages whose own dependencies
    # must not come along (it says why), after the rest so nothing reinstalls them.
    no_deps=$(sed -n 's/^# no-deps: *//p' requirements.txt)
    if [ -n "$no_deps" ]; then
        # shellcheck disable=SC2086  # one argument per package
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $no_deps
    fi
    echo "$wanted" > "$stamp"
fi
