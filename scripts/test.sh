#!/usr/bin/env bash
# The test command: installs everything it needs (PostgreSQL 15, pg_cron, pgvector,
# pgbouncer, the Python packages, the Pulumi CLI built from Go modules), then lints and
# runs the whole suite against a real PostgreSQL, every deployment through the real CLI.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k deploy`, `-m e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
    bash scripts/setup-postgres.sh
elif command -v sudo >/dev/null 2>&1; then
    sudo bash scripts/setup-postgres.sh
else
    echo "test.sh: not root and no sudo; assuming PostgreSQL 15, pg_cron and pgvector are" \
         "installed (scripts/setup-postgres.sh installs them as root)" >&2
fi
bash scripts/venv.sh
# Built once per machine (minutes), then found in the cache; the tests find it there too.
bash scripts/install-pulumi.sh >/dev/null
.venv/bin/ruff check --quiet .
.venv/bin/mypy  # strict, over components/ (pyproject.toml's [tool.mypy])
# The GitHub Actions workflows (docs/ci.md): actionlint, built once from its Go module.
"$(bash scripts/install-actionlint.sh)" .github/workflows/*.yml
# Two workers: most of a deployment's time is the engine's processes waiting on each other.
.venv/bin/pytest -n 2 "$@"
