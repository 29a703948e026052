"""Post-deploy checks: preflight (before a change) and validation (after it), and the one
check framework the security audit (`components/audit.py`) runs on too.

`core` runs named checks with prerequisites and makes the report; `preflight` and
`validate` hold the checks; `pooler` checks the stack's transaction-mode pooler; `command`
is the CLI (`python -m components preflight|validate`); `provider` is the dynamic provider
behind the `Preflight` and `PostDeployChecks` resources (the only module here that imports
Pulumi). Everything else is psycopg only, so the CLI and the resources run the same code.
"""
