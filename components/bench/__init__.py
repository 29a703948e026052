"""`python -m components bench`: how a stack's schema performs for what mem0 sends.

The bench builds the stack's tables, functions, triggers and indexes from the same model the
Pulumi program deploys (`build_model(settings, schema=scratch)`) in a throwaway schema
`mem0_bench_<8 hex>`, fills it with mem0-shaped rows generated inside the server, users
skewed by default (zipf), and times mem0's exact statements as mem0 sends them
(`components.mem0`): its search with LIMIT 80 (recall@10, recall@80 and full pages against
an exact search), get by id, its list (LIMIT 100), insert, and the graph's 1- and 2-hop
traversal. By default (`--as app`) they run as a throwaway role given the app role's
grants, row-level security policies and search settings from the model, on a connection of
its own; searches and lists are reported per size class of users (~10K, ~1K, ~100 ...
memories). `--compare mem0-default` also times the same queries, interleaved, on the table
mem0 makes for itself. Schemas and role are dropped again whatever happens (also on
Ctrl-C). Its figures are for issue notes and sizing; no test asserts a timing. The p95 of
the insert, every class's user search, the get by id and both traversals are compared with
the stack's limits (benchInsertMs, benchSearchMs, benchGetMs, benchTraverseMs): the command
exits 1 when one is exceeded, and `run_stack_benchmark` gives the post-deploy checks the
same verdict, measured the same way.

The package exports the command and the run (`__all__` below); its modules, each with its
own `__all__` or documented public names: `run` (the command and the run, the steps in
order around the lifecycle of the scratch schemas and the role; Ctrl-C is exit code 130),
`arguments` (command line), `server` (pgvector and session settings), `scratch` (indexes,
sizes, dropping), `users` (memories per user, size classes), `data` (the synthetic rows),
`samples` (the queries, drawn before any timed run), `role` (the throwaway role and the
app-role session), `compare` (mem0's own table), `measure` (timed runs on each side,
recall, pages), `explain` (plans and what they do in words), `thresholds` (the stack's
limits against the metrics), `report` (the JSON document and the text report), `markdown`
(--markdown), `plot` (--plot, matplotlib) and `progress` (lines and bars on a terminal);
`--rls` adds `rls` (what row-level security variants cost mem0's reads, as the same
throwaway role). `--embedder minilm` loads real text instead: `texts` (mem0-style memory
texts, a persona per user) embedded by `minilm` (all-MiniLM-L6-v2, 384 dimensions, in
numpy), through `realdata`. `load` is apart from the command: concurrent mem0 traffic
(`Memory.add`/`Memory.search` as the app role) with index and lock sampling, for
measurements during a deployment (scripts/measure_live_change.py).
"""

from __future__ import annotations

from components.bench.arguments import add_arguments
from components.bench.common import DSN_ENV, BenchError
from components.bench.measure import MEASUREMENTS
from components.bench.run import (
    EXIT_INTERRUPTED,
    EXIT_THRESHOLD,
    STACK_DISTRIBUTION,
    STACK_SAMPLES,
    BenchRun,
    command,
    run_benchmark,
    run_stack_benchmark,
)

__all__ = ["DSN_ENV", "EXIT_INTERRUPTED", "EXIT_THRESHOLD", "MEASUREMENTS",
           "STACK_DISTRIBUTION", "STACK_SAMPLES", "BenchError", "BenchRun", "add_arguments",
           "command", "run_benchmark", "run_stack_benchmark"]
