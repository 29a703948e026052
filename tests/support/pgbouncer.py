"""A real PgBouncer (the Debian package's /usr/sbin/pgbouncer) in front of a test server.

`start_pgbouncer` writes a configuration into a temporary directory, starts PgBouncer in
the foreground on a free port of 127.0.0.1, waits until it accepts connections and returns
it with an idempotent stop function; `running_pgbouncer` is the same as a context manager.
PgBouncer refuses to run as root, so under root it runs as the PostgreSQL service account
(the one that owns testbed.py's local cluster), which must be able to read the directory.

Clients authenticate with `auth_type = trust`: PgBouncer asks no password, but a user must
still be listed in the auth file. The password listed there is what PgBouncer answers when
the server asks for one (the local cluster trusts every login; a container does not).

TLS on both sides: PgBouncer reaches the server over TLS where the server offers it (the
local cluster admits TCP only over TLS), and accepts clients with or without it, with a
certificate signed by a CA of its own (`PgBouncer.root_cert`), so a pooler URL carrying
the stack's sslmode connects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from tests.support.certs import make_ca, make_server_cert
from tests.support.testbed import OS_SUPERUSER

PGBOUNCER = Path("/usr/sbin/pgbouncer")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3
POOL_MODES = ("session", "transaction", "statement")

StopFn = Callable[[], None]


@dataclass(frozen=True)
class PgBouncer:
    """How to reach a running PgBouncer."""

    host: str
    port: int
    pool_mode: str
    directory: Path  # its configuration and log
    admin_user: str | None = None  # may use the admin console (database `pgbouncer`)

    @property
    def root_cert(self) -> Path:
        """The CA of the certificate PgBouncer shows its clients."""
        return self.directory / "root.crt"

    def url(self, database: str, user: str, password: str | None = None) -> str:
        """A postgresql:// URL of `database` through PgBouncer, as `user`."""
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def show(self, what: str) -> list[dict[str, Any]]:
        """`SHOW <what>` of the admin console (CLIENTS, SERVERS, POOLS, ...), as dicts.
        The console speaks only the simple query protocol, hence the client-side cursor."""
        if self.admin_user is None:
            raise RuntimeError("started without admin_user: no admin console")
        with psycopg.connect(self.url("pgbouncer", self.admin_user), autocommit=True,
                             cursor_factory=psycopg.ClientCursor) as conn:
            cur = conn.execute(f"SHOW {what}")
            names = [column.name for column in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def log_tail(self, lines: int = 30) -> str:
        return _log_tail(self.directory, lines)


def start_pgbouncer(server_host: str, server_port: int | str,
                    users: Mapping[str, str | None], pool_mode: str = "transaction",
                    admin_user: str | None = None, **settings: str | int
                    ) -> tuple[PgBouncer, StopFn]:
    """Start PgBouncer in `pool_mode` in front of the server at `server_host:server_port`.

    Every database name goes through to the server's database of the same name (`* =`);
    `users` are the logins it accepts, user -> password for the server (None: none, the
    server trusts it); `admin_user`, one of them, may use the admin console. `settings` add
    or override lines of the [pgbouncer] section (say default_pool_size=2).
    """
    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool_mode {pool_mode!r}; allowed: {', '.join(POOL_MODES)}")
    if not PGBOUNCER.exists():
        raise RuntimeError(f"PgBouncer unavailable (missing: {PGBOUNCER}); run "
                           "`scripts/setup-postgres.sh` as root")
    directory = Path(tempfile.mkdtemp(prefix="mem0-pgbouncer-", dir="/tmp"))
    process: subprocess.Popen[bytes] | None = None

    def stop() -> None:
        if process is not None:
            _terminate(process)
        shutil.rmtree(directory, ignore_errors=True)

    stop = _once(stop)
    if admin_user is not None:
        settings = {"admin_users": admin_user, **settings}
    try:
        for attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            _write_config(directory, server_host, server_port, users, pool_mode, port,
                          settings)
            process = _spawn(directory)
            try:
                _wait_until_listening(process, directory, port)
            except RuntimeError:
                # The free-port probe and PgBouncer's bind are not atomic: only losing
                # that race is worth another port.
                if attempt + 1 == PORT_ATTEMPTS or "in use" not in _log_tail(directory):
                    raise
                _terminate(process)
                continue
            return PgBouncer("127.0.0.1", port, pool_mode, directory, admin_user), stop
        raise AssertionError("unreachable")
    except BaseException:
        stop()
        raise


@contextlib.contextmanager
def running_pgbouncer(server_host: str, server_port: int | str,
                      users: Mapping[str, str | None], pool_mode: str = "transaction",
                      admin_user: str | None = None, **settings: str | int
                      ) -> Iterator[PgBouncer]:
    bouncer, stop = start_pgbouncer(server_host, server_port, users, pool_mode, admin_user,
                                    **settings)
    try:
        yield bouncer
    finally:
        stop()


def _write_config(directory: Path, server_host: str, server_port: int | str,
                  users: Mapping[str, str | None], pool_mode: str, port: int,
                  settings: Mapping[str, str | int]) -> None:
    config: dict[str, str | int] = {
        "listen_addr": "127.0.0.1",
        "listen_port": port,
        "unix_socket_dir": "",  # TCP only: no socket file to clash with the test server's
        "auth_type": "trust",
        "auth_file": str(directory / "users.txt"),
        "pidfile": str(directory / "pgbouncer.pid"),
        "pool_mode": pool_mode,
        "max_client_conn": 200,
        "default_pool_size": 20,
        "min_pool_size": 0,
        # psycopg and libpq send these startup parameters; PgBouncer 1.18 refuses a client
        # that sends a parameter it does not know, unless told to ignore it.
        "ignore_startup_parameters": "extra_float_digits,options",
        # A transaction-mode pool must not DISCARD ALL between clients (it is for sessions).
        "server_reset_query": "" if pool_mode != "session" else "DISCARD ALL",
        "server_check_delay": 0,
        "server_login_retry": 1,
        "query_wait_timeout": 30,
        "log_connections": 0,
        "log_disconnections": 0,
        "log_pooler_errors": 1,
        "verbose": 0,
        # TLS to the server where it offers it; clients may come with or without TLS.
        "server_tls_sslmode": "prefer",
        "client_tls_sslmode": "allow",
        "client_tls_cert_file": str(directory / "server.crt"),
        "client_tls_key_file": str(directory / "server.key"),
        **settings,
    }
    make_server_cert(make_ca(directory), directory)
    text = (f"[databases]\n* = host={server_host} port={server_port}\n\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in config.items()))
    (directory / "pgbouncer.ini").write_text(text)
    (directory / "users.txt").write_text("".join(
        f'"{_auth_quote(user)}" "{_auth_quote(password or "")}"\n'
        for user, password in users.items()))
    if _running_as_root():
        # PgBouncer refuses to run as root: it runs as the service account, which must
        # read its configuration and write its pidfile here.
        for path in (directory, *directory.iterdir()):
            shutil.chown(path, OS_SUPERUSER, OS_SUPERUSER)


def _auth_quote(value: str) -> str:
    return value.replace('"', '""')


def _spawn(directory: Path) -> subprocess.Popen[bytes]:
    # Foreground (no -d): the process is PgBouncer itself, logging to stderr, so stopping
    # it is a signal to a known pid. Under root, Popen switches to the service account
    # before exec (what testbed.py's `runuser` does for pg_ctl), with no extra groups.
    account = ({"user": OS_SUPERUSER, "group": OS_SUPERUSER, "extra_groups": []}
               if _running_as_root() else {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with open(directory / "pgbouncer.log", "wb") as log:
        return subprocess.Popen([str(PGBOUNCER), str(directory / "pgbouncer.ini")],
                                cwd=directory, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, **account)


def _wait_until_listening(process: subprocess.Popen[bytes], directory: Path,
                          port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"pgbouncer exited with {code} at start-up; log tail:\n"
                               f"{_log_tail(directory)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} within "
                               f"{START_TIMEOUT_S:.0f}s; log tail:\n{_log_tail(directory)}")
        time.sleep(0.05)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM is PgBouncer's immediate shutdown (SIGINT would wait for clients)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


def _log_tail(directory: Path, lines: int = 30) -> str:
    try:
        return "\n".join((directory / "pgbouncer.log").read_text(errors="replace")
                         .splitlines()[-lines:]) or "(empty log)"
    except OSError:
        return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _once(fn: StopFn) -> StopFn:
    done = False

    def wrapper() -> None:
        nonlocal done
        if not done:
            done = True
            fn()

    return wrapper
