"""The pooler check: mem0's own statements through the stack's `poolerUrl`.

A transaction-mode pooler (Supavisor port 6543, PgBouncer `pool_mode = transaction`) hands
each transaction of a client to whichever server connection is free, and psycopg's
server-side prepared statements (named `_pg3_N`: mem0's insert, an executemany, is prepared
at once, any other statement at its 6th execution on a connection) exist on one server
connection only: the next transaction's statement names a
prepared statement its server never saw (mem0-contract.md 5). The check proves what the
application will meet, with its own connections to `poolerUrl`:

1. the pooler leads to the stack's server and database, and mem0's unqualified names
   (`vector`, `"<collection>"`) resolve there to the stack's type and table;
2. the pool mode, observed: a second client holds a transaction open every other round, so
   a transaction pooler must give the first client's next transaction another server
   connection (`pg_backend_pid()` changes), and a session pooler never does;
3. mem0's user-filtered search, get by id and insert, each run more often than psycopg's
   prepare threshold, with prepared statements on or off as the application has them
   (`poolerPreparedStatements`), in transactions that move between server connections.

The inserts are undone (rolled back) and every connection the check opened is closed.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import pq

from components import mem0
from components.checks.core import Context, Outcome, failed, not_applicable, passed
from components.connection import TlsUrlError, stack_url
from components.identifiers import qualified
from components.vectors import probe_vector

APPLICATION = "mem0infra-pooler-check"
CONNECT_TIMEOUT_S = 10
# Rounds of the check's client; each runs mem0's insert once and its search and get twice.
# psycopg prepares a statement at its 6th execution on a connection (prepare_threshold=5),
# an executemany (mem0's insert) at its first, and uses it from then on, so 8 rounds run
# every statement prepared, then again on the other server connection.
ROUNDS = 8
PREPARING = ("psycopg prepares mem0's insert (an executemany) at once and any other statement "
             f"at its {mem0.PREPARE_THRESHOLD + 1}th execution on a connection")
HOLD_WAIT_S = 10.0  # how long the second client may take to get a server connection
HOLD_MAX_S = 15.0  # and the longest it holds one (a pool of one would block the check)
# SQLSTATEs of a prepared statement that is not where the client left it: 26000 "prepared
# statement ... does not exist", 42P05 "prepared statement ... already exists".
PREPARED_STATEMENT_ERRORS = ("26000", "42P05")
FIX_PREPARED = ("set poolerPreparedStatements to false and connect mem0 as the stack's "
                "poolerGuidance output says: " + mem0.CONNECTION_GUIDANCE)


def check_pooler(ctx: Context) -> Outcome:
    """mem0's statements through the stack's pooler URL, as the application runs them."""
    url = ctx.settings.pooler_url
    if not url:
        return not_applicable("no poolerUrl: the stack names no pooler, so no statement was "
                              "run through one")
    try:  # the application's pooler connections carry the stack's sslMode too
        url = stack_url(url, ctx.settings, "poolerUrl")
    except TlsUrlError as exc:
        return failed(str(exc), "give poolerUrl no sslmode, or one at least as strong as "
                      "sslMode")
    run = _PoolerRun(ctx, url)
    try:
        return run.run()
    finally:
        run.close()


def redacted(url: str) -> str:
    """`url` without its password (and without query parameters, which may hold one)."""
    try:
        parts = urlsplit(url)
        user = unquote(parts.username or "")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<not a URL>"
    if not parts.scheme:
        return "<not a URL>"
    return f"{parts.scheme}://{user + '@' if user else ''}{host}{port}{parts.path}"


class _Failure(Exception):
    """Ends the run with a failed outcome."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.outcome = failed(detail, hint)


class _PoolerRun:
    def __init__(self, ctx: Context, url: str) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.url = url
        self.where = redacted(url)
        self.prepared = s.pooler_prepared_statements
        password = _password(url)
        self.secrets = [p for p in (password,) if p]
        # The application's connections: psycopg's default prepares statements; with
        # poolerPreparedStatements false the application passes prepare_threshold=None
        # (components.mem0.CONNECTION_GUIDANCE), and so does the check.
        self.kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S,
                                       "application_name": APPLICATION}
        if not self.prepared:
            self.kwargs["prepare_threshold"] = None
        # mem0 2.2.1 sends its names unqualified (`"memories"`, `%s::vector`, `<=>`) and
        # relies on the session's search_path. The check resolves those names once, the way
        # mem0 does, and fails with its own fix when they do not reach the stack's objects;
        # the statements it drives are mem0's with the names qualified, so that a failure
        # among them is the pooler's (its mode, prepared statements), not a search_path
        # that a shared server connection may have had changed by another client.
        self.sql = mem0.Statements.qualified_names(qualified("public", s.collection),
                                                   s.extension_schema)
        self.client: psycopg.Connection[Any] | None = None
        self.holder: _Holder | None = None
        self.pids: list[int] = []
        self.executed: Counter[str] = Counter()
        self.statements = 0
        # Each driven statement ends in a comment naming this run and the statement, so the
        # server's pg_prepared_statements shows which of them a server connection holds
        # (and a previous run's leftovers never pass for this run's).
        self.run_id = uuid.uuid4().hex[:12]
        self.in_transaction: set[str] = set()  # labels run in the current transaction
        self.prepared_on: dict[str, int] = {}  # label -> backend pid first seen holding it

    # --- the run --------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            self.client = self._connect("the check's client")
            user_id = self._resolve_names()
            self.holder = _Holder(self._connect("the second client"))
            for round_no in range(ROUNDS):
                holding = round_no % 2 == 1 and self.holder.usable
                if holding and self.holder.hold() is None:
                    holding = False
                try:
                    self._round(user_id)
                finally:
                    if holding:
                        self.holder.release()
        except _Failure as failure:
            return failure.outcome
        return passed(self._summary())

    def _round(self, user_id: str) -> None:
        """One insert, get and search that see the new row, undone; then a get and a search
        that see it gone: two transactions, committed like mem0's (psycopg's rollback would
        also forget the connection's prepared statements, which mem0's commits keep)."""
        memory_id = str(uuid.uuid4())
        # A list of floats, as mem0 binds a vector (psycopg sends float8[]): the parameter
        # types are part of what psycopg prepares, so the check binds no pgvector type.
        vector = probe_vector(self.ctx.settings.dimensions, len(self.pids))
        text = f"pooler check {memory_id}"
        now = mem0.timestamp()
        payload = mem0.payload_json(text, user_id=user_id, digest=uuid.uuid4().hex,
                                    created_at=now, updated_at=now)
        self._begin()
        self._mem0("insert", self.sql.insert(), [(memory_id, vector, payload)], many=True)
        got = self._mem0("get by id", self.sql.get(), (memory_id,))
        found = self._mem0("user-filtered search", self.sql.search(),
                           mem0.search_params(vector, user_id))
        self._verify_prepared()
        self._undo()
        if len(got) != 1 or not found or str(found[0][0]) != memory_id:
            raise _Failure(
                f"through poolerUrl {self.where}, mem0's get by id and search did not return "
                f"the memory just inserted in the same transaction (get: {len(got)} rows, "
                f"search: {len(found)} rows)",
                "the pooler did not keep the transaction on one server connection (mem0 "
                "needs transaction or session mode), or row-level security hides the row "
                "from poolerUrl's user: check poolerUrl's pool mode and user")
        self._begin()
        gone = self._mem0("get by id", self.sql.get(), (memory_id,))
        still = self._mem0("user-filtered search", self.sql.search(),
                           mem0.search_params(vector, user_id))
        self._verify_prepared()
        self._commit()
        if gone or any(str(row[0]) == memory_id for row in still):
            raise _Failure(f"through poolerUrl {self.where}, a rolled-back insert is still "
                           "visible", "the pooler does not pass ROLLBACK through; check "
                           "poolerUrl's pooler")

    def _resolve_names(self) -> str:
        """Fail unless the pooler reaches the stack's server and database and mem0's
        unqualified names resolve there to the stack's objects; return the user id to write
        (the session's mem0.user_id when the URL binds one, else a throwaway one)."""
        s = self.ctx.settings
        self._begin()
        row = self._execute(
            "SELECT pg_catalog.pg_postmaster_start_time(), pg_catalog.current_database(),"
            " current_user, pg_catalog.current_setting('search_path'),"
            " (SELECT n.nspname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n"
            "   ON n.oid = t.typnamespace WHERE t.oid = pg_catalog.to_regtype('vector')),"
            " (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            "   ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass(%s)),"
            " pg_catalog.current_setting('mem0.user_id', true)",
            (f'"{s.collection}"',), "its first query")[0]
        self._commit()
        started, database, user, search_path, type_schema, table_schema, bound = row
        ours = self.ctx.conn.execute("SELECT pg_catalog.pg_postmaster_start_time(),"
                                     " pg_catalog.current_database()").fetchone()
        if ours is not None and (started, database) != tuple(ours):
            raise _Failure(
                f"poolerUrl {self.where} leads to database {database} of a server started at "
                f"{started:%Y-%m-%d %H:%M:%S%z}, not to the stack's database {ours[1]} "
                f"(server started at {ours[0]:%Y-%m-%d %H:%M:%S%z})",
                "set poolerUrl to the pooler in front of the stack's database (databaseUrl's)")
        if type_schema != s.extension_schema or table_schema != "public":
            raise _Failure(
                f"through poolerUrl {self.where} (as {user}, search_path {search_path}), "
                f"mem0's unqualified names resolve to type vector: "
                f"{type_schema or 'not found'}, table \"{s.collection}\": "
                f"{table_schema or 'not found'}; the stack's are "
                f"{qualified(s.extension_schema, 'vector')} and "
                f"{qualified('public', s.collection)} (mem0 qualifies neither)",
                f"connect through poolerUrl as the app role ({s.app_role}, whose search_path "
                f"`pulumi up` declares), or give poolerUrl's user a search_path with public "
                f"and {s.extension_schema} (ALTER ROLE ... SET search_path)")
        return bound or f"pooler-check-{uuid.uuid4().hex[:12]}"

    def _summary(self) -> str:
        distinct = len(set(self.pids))
        held = self.holder.held if self.holder else 0
        if distinct > 1:
            mode = (f"transaction mode (or statement): {len(self.pids)} consecutive "
                    f"transactions of one client ran on {distinct} server connections")
        else:
            mode = (f"session mode (or a direct connection): {len(self.pids)} consecutive "
                    f"transactions of one client all ran on one server connection")
        mode += (f", while a second client held a transaction open in {held} of {ROUNDS} "
                 "rounds")
        if self.holder and self.holder.trouble:
            mode += f" ({self.holder.trouble})"
        ran = ", ".join(f"{label} {count}x" for label, count in self.executed.items())
        prepared = (f"prepared statements on ({PREPARING}), as poolerPreparedStatements "
                    "says the application runs" if self.prepared else
                    "prepared statements off (prepare_threshold=None), as the application "
                    "runs with poolerPreparedStatements false")
        return (f"through {self.where}: {mode}; mem0's statements worked ({ran}; "
                f"{self.statements} statements, the inserts rolled back) with {prepared}")

    # --- statements -----------------------------------------------------------------------

    def _mem0(self, label: str, statement: str, params: Any, many: bool = False
              ) -> list[tuple[Any, ...]]:
        """Run one of mem0's statements on the client, exactly as psycopg sends mem0's
        (executemany for the insert, prepared or not by the connection's threshold)."""
        assert self.client is not None
        self.executed[label] += 1
        self.in_transaction.add(label)
        statement += f" /* {APPLICATION} {self.run_id}: {label} */"
        try:
            with self.client.cursor() as cur:
                if many:
                    cur.executemany(statement, params)
                    rows: list[tuple[Any, ...]] = []
                else:
                    cur.execute(statement, params)
                    rows = cur.fetchall()
        except psycopg.Error as exc:
            raise self._statement_failure(f"mem0's {label}", exc,
                                          self.executed[label]) from exc
        self.statements += 1
        return rows

    def _execute(self, statement: str, params: Sequence[Any], what: str
                 ) -> list[tuple[Any, ...]]:
        """The check's own statements: never prepared, so they never fail for it."""
        assert self.client is not None
        try:
            rows = self.client.execute(statement, params, prepare=False).fetchall()
        except psycopg.Error as exc:
            raise self._statement_failure(what, exc) from exc
        self.statements += 1
        return rows

    def _begin(self) -> None:
        """Start a transaction (psycopg's BEGIN) and note the server connection it got."""
        [(pid,)] = self._execute("SELECT pg_catalog.pg_backend_pid()", (),
                                 "the check's pg_backend_pid()")
        self.pids.append(pid)
        self.in_transaction.clear()

    def _verify_prepared(self) -> None:
        """With prepared statements on: every statement of this transaction that psycopg had
        prepared before it (on whichever server connection) must be held by this
        transaction's server connection. When it is not, and yet nothing failed, the pooler
        ran a leftover prepared statement of the same name (psycopg names them _pg3_0,
        _pg3_1, ... on every connection) that another client left on that server
        connection: prepared statements only seemed to work. A pooler that tracks
        prepared statements itself (PgBouncer >= 1.21 with max_prepared_statements)
        prepares this run's text on each server connection, so it passes."""
        if not self.prepared:
            return
        pid = self.pids[-1]
        marker = re.compile(rf"/\* {APPLICATION} {self.run_id}: ([a-z -]+) \*/")
        rows = self._execute("SELECT statement FROM pg_catalog.pg_prepared_statements"
                             " WHERE statement LIKE %s", (f"%{self.run_id}%",),
                             "the check's pg_prepared_statements query")
        held = {m.group(1) for (text,) in rows if (m := marker.search(text))}
        for label in sorted(self.in_transaction):
            elsewhere = self.prepared_on.get(label)
            if elsewhere is not None and elsewhere != pid and label not in held:
                raise _Failure(
                    f"prepared statements break through poolerUrl {self.where} in "
                    f"transaction mode: mem0's {label}, prepared on server connection "
                    f"{elsewhere}, ran at its {_ordinal(self.executed[label])} execution on "
                    f"server connection {pid}, which does not hold it, and did not fail: "
                    "the pooler ran another client's leftover prepared statement of the "
                    f"same name instead; {PREPARING}", FIX_PREPARED)
        for label in held:
            self.prepared_on.setdefault(label, pid)

    def _commit(self) -> None:
        assert self.client is not None
        try:
            self.client.commit()
        except psycopg.Error as exc:
            raise self._statement_failure("COMMIT", exc) from exc

    def _undo(self) -> None:
        """ROLLBACK through libpq: psycopg's rollback() would also deallocate the
        connection's prepared statements and forget them, which mem0 (whose every call
        commits) never does, and the check would then not run them as mem0 does."""
        assert self.client is not None
        with self.client.lock:
            result = self.client.pgconn.exec_(b"ROLLBACK")
        if result.status != pq.ExecStatus.COMMAND_OK:
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise _Failure(f"ROLLBACK through poolerUrl {self.where} failed: "
                           f"{self._scrub(message)}",
                           "check poolerUrl's pooler: it must pass transactions through")

    def _statement_failure(self, what: str, exc: psycopg.Error,
                           execution: int | None = None) -> _Failure:
        message = self._scrub(str(exc).strip())
        nth = f" at its {_ordinal(execution)} execution" if execution else ""
        moved = len(set(self.pids)) > 1
        if _is_prepared_statement_error(exc):
            if self.prepared:
                return _Failure(
                    f"prepared statements break through poolerUrl {self.where}"
                    f"{' in transaction mode' if moved else ''}: {what} failed{nth} "
                    f"({message}); {PREPARING}, and the pooler ran the prepared "
                    "statement on a server connection that does not hold it",
                    FIX_PREPARED)
            return _Failure(
                f"{what} failed{nth} through poolerUrl {self.where} with a prepared-"
                f"statement error although the check prepares nothing: {message}",
                "another client of the pooler prepares statements on shared server "
                "connections; turn them off there too (prepare_threshold=None), or use a "
                "session-mode pooler for poolerUrl")
        if "statement pooling" in message.lower():
            return _Failure(f"{what} failed through poolerUrl {self.where}: {message}",
                            "mem0 runs transactions: poolerUrl's pooler must be in "
                            "transaction or session mode, not statement mode")
        return _Failure(f"{what} failed{nth} through poolerUrl {self.where}: {message}",
                        "check poolerUrl (the pooler, the user it connects as and its "
                        "grants on the memories table); the error is the server's or the "
                        "pooler's")

    def _connect(self, who: str) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, **self.kwargs)
        except psycopg.Error as exc:
            raise _Failure(
                f"{who} could not connect to poolerUrl {self.where}: "
                f"{self._scrub(str(exc).strip())}",
                "check poolerUrl: host, port, user, password and database of the pooler "
                "the application connects through (`pulumi config set --secret poolerUrl "
                "postgresql://...`)") from exc

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        """Close what the check opened; an unfinished transaction is rolled back first
        (through libpq: psycopg's rollback() would follow it with DEALLOCATE ALL, which a
        transaction pooler runs on a server connection other clients use)."""
        if self.client is not None:
            if self.client.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error), self.client.lock:
                    self.client.pgconn.exec_(b"ROLLBACK")
            self.client.close()
        if self.holder is not None:
            self.holder.stop()


class _Holder:
    """The second client: on command, holds a transaction (and so a server connection) open
    on a thread of its own, so the check's client cannot have that server connection.

    Through a session pooler with a single server connection its first query waits for
    the check's client to disconnect, and through a transaction pooler with a single
    server connection the check's client waits for it: hence the thread, a bounded wait
    for the hold, and a hold that ends by itself after HOLD_MAX_S.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        conn.prepare_threshold = None  # its statements are not the subject of the check
        self.conn = conn
        self.held = 0
        self.trouble = ""
        self.usable = True
        self._commands: queue.Queue[str] = queue.Queue()
        self._acks: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=APPLICATION, daemon=True)
        self._thread.start()

    def hold(self) -> int | None:
        """Open a transaction; its backend pid, or None when it got no server connection
        in time (the check then goes on without holding)."""
        self._commands.put("hold")
        try:
            ack = self._acks.get(timeout=HOLD_WAIT_S)
        except queue.Empty:
            self.usable = False
            self.trouble = (f"the second client got no server connection within "
                            f"{HOLD_WAIT_S:.0f}s: a pool of one?")
            return None
        if isinstance(ack, psycopg.Error):
            self.usable = False
            self.trouble = f"the second client's transaction failed: {str(ack).strip()}"
            return None
        self.held += 1
        return ack if isinstance(ack, int) else 0

    def release(self) -> None:
        """End the transaction and wait until its server connection is free again."""
        self._commands.put("release")
        try:
            self._acks.get(timeout=HOLD_MAX_S + HOLD_WAIT_S)
        except queue.Empty:
            self.usable = False

    def stop(self) -> None:
        self._commands.put("stop")
        self._thread.join(HOLD_MAX_S + HOLD_WAIT_S)
        self.conn.close()

    def _serve(self) -> None:
        while True:
            command = self._commands.get()
            if command == "stop":
                return
            if command == "release":  # its hold had already ended by itself
                self._acks.put("released")
                continue
            try:
                row = self.conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()
            except psycopg.Error as exc:
                self._acks.put(exc)
                return
            self._acks.put(row[0] if row else 0)
            try:
                command = self._commands.get(timeout=HOLD_MAX_S)
            except queue.Empty:
                command = ""
                self.trouble = (f"the second client's hold ended after {HOLD_MAX_S:.0f}s: "
                                "the check's client waited for its server connection")
            with contextlib.suppress(psycopg.Error):
                self.conn.rollback()
            if command == "stop":
                return
            if command == "release":
                self._acks.put("released")


def _is_prepared_statement_error(exc: psycopg.Error) -> bool:
    return (exc.sqlstate in PREPARED_STATEMENT_ERRORS
            or "prepared statement" in str(exc).lower())


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
