"""`python -m components connections`: a read-only report of who holds the server's
connections, what is stuck, and whether mem0's connection budget fits (docs/connections.md).

The modules, each with one job: `roles` (which of the stack's roles a login is),
`activity` (pg_stat_activity grouped, idle-in-transaction sessions, long statements, the
connection slots and role limits), `pooler` (PgBouncer's admin console: SHOW POOLS, STATS),
`budget` (mem0's connections per process against the slots left, and the verdict),
`snapshot` (one report's facts, read in one read-only transaction), `report` (text, JSON,
Markdown) and `command` (arguments, --watch and exit codes). mem0's pool sizes and the
connections a Memory holds are mem0's contract (components/mem0.py).
"""

from components.connections.budget import Basis, Budget, PoolShape, Verdict, assess
from components.connections.command import HELP, ConnectionsError, add_arguments, command
from components.connections.pooler import PoolerUnavailable, PoolerView, pooler_view
from components.connections.snapshot import Options, Snapshot, take_snapshot

__all__ = ["HELP", "Basis", "Budget", "ConnectionsError", "Options", "PoolShape",
           "PoolerUnavailable", "PoolerView", "Snapshot", "Verdict", "add_arguments", "assess",
           "command", "pooler_view", "take_snapshot"]
