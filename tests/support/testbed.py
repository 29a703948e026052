"""A real PostgreSQL server for integration tests.

`start_server` picks the first backend that is available, in this order:

1. ``MEM0_TEST_DSN``: an admin DSN to a server someone else runs (CI service, dev box).
2. testcontainers with ``pgvector/pgvector:pg16``, only when a Docker engine answers.
3. A throwaway local cluster built from the Debian PostgreSQL 15 binaries, with pg_cron
   preloaded. ``scripts/setup-postgres.sh`` provisions those binaries and pgvector. It
   serves TLS with a certificate signed by a CA made at start (`PgServer.root_cert`), and
   its pg_hba.conf admits TCP clients only over TLS (`hostssl`), as docs/security.md
   advises: target-postgres stacks connect with sslMode require, and the audit's
   login_without_tls finds nothing. Unix sockets stay (`local`, no TLS).

Tests get isolation by creating one database each (`create_database` / `drop_database`)
rather than one server each, because server start-up dominates run time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.certs import CertificateAuthority, make_ca, make_server_cert

ENV_DSN = "MEM0_TEST_DSN"
CONTAINER_IMAGE = "pgvector/pgvector:pg16"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_CRON_LIB = Path("/usr/lib/postgresql/15/lib/pg_cron.so")
OS_SUPERUSER = "postgres"  # Debian's service account; also the cluster's superuser role
DOCKER_PROBE_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 10
MAX_IDENTIFIER_LEN = 63  # NAMEDATALEN - 1; longer names are silently truncated by Postgres

StopFn = Callable[[], None]


@dataclass(frozen=True)
class PgServer:
    """How to reach a running server, plus the capabilities tests may branch on."""

    admin_dsn: str
    source: str
    has_pg_cron: bool
    cron_database: str
    server_version: int
    root_cert: str = ""  # the CA of the server's certificate (PEM), where the testbed made it

    def dsn_for(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """DSN for another database and/or role on the same host and port.

        When a different user is given, the admin password is dropped rather than reused,
        so a role's DSN never carries (or silently authenticates with) admin credentials.
        """
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = database
        if user is not None:
            params["user"] = user
            params.pop("password", None)
        if password is not None:
            params["password"] = password
        return _as_url({k: v for k, v in params.items() if v is not None})


def _as_url(params: dict[str, str]) -> str:
    """A postgresql:// URL (the form stack settings take) from conninfo parameters."""
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host, port = params.pop("host", ""), params.pop("port", "")
    database = quote(params.pop("dbname", ""), safe="")
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(params.items()))
    netloc = f"{auth}{host}" + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{database}" + (f"?{query}" if query else "")


def start_server() -> tuple[PgServer, StopFn]:
    """Start (or attach to) a server; return it and an idempotent stop function."""
    env_dsn = os.environ.get(ENV_DSN)
    if env_dsn:
        return _probe_server(env_dsn, "env"), _noop
    if _docker_engine_answers():
        return _start_container()
    return _start_local_cluster()


def create_database(server: PgServer, prefix: str = "t") -> str:
    """Create a uniquely named, empty database and return its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if len(name) > MAX_IDENTIFIER_LEN:
        raise ValueError(f"database prefix too long: {prefix!r}")
    with _admin_connection(server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(server: PgServer, name: str) -> None:
    """Drop a database even if tests left connections open to it, and the roles named after
    it (`<anything>_<database name>`: roles are cluster-wide, so tests name theirs so)."""
    with _admin_connection(server) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        # FORCE (PG 13+) also covers a client that reconnects between terminate and drop.
        force = sql.SQL(" WITH (FORCE)") if server.server_version >= 130000 else sql.SQL("")
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))
        if server.has_pg_cron:
            _unschedule_jobs_of(server, name)
        roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                             (f"%\\_{name}",)).fetchall()
        for (role,) in roles:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _unschedule_jobs_of(server: PgServer, database: str) -> None:
    """pg_cron's jobs that ran in a dropped database would fail every time they come up."""
    with psycopg.connect(server.dsn_for(server.cron_database), autocommit=True,
                         connect_timeout=CONNECT_TIMEOUT_S) as conn:
        if conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            conn.execute("DELETE FROM cron.job WHERE database = %s", (database,))


def _probe_server(admin_dsn: str, source: str, root_cert: str = "") -> PgServer:
    """Connect once and read the version and pg_cron facts tests depend on."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int,"
            " current_setting('shared_preload_libraries'),"
            " current_setting('cron.database_name', true),"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron')"
        ).fetchone()
    assert row is not None
    version, preload, cron_db, cron_available = row
    preloaded = "pg_cron" in (lib.strip() for lib in preload.split(","))
    return PgServer(
        admin_dsn=_as_url(dict(conninfo_to_dict(admin_dsn))),
        source=source,
        has_pg_cron=preloaded and bool(cron_available),
        # pg_cron's own default when cron.database_name is unset.
        cron_database=cron_db or "postgres",
        server_version=version,
        root_cert=root_cert,
    )


def _admin_connection(server: PgServer) -> psycopg.Connection:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    return psycopg.connect(server.admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def _noop() -> None:
    """Stop function for servers we do not own."""


def _once(fn: StopFn) -> StopFn:
    """Wrap a stop function so repeated calls (fixture + atexit, say) are harmless."""
    lock = threading.Lock()
    done = False

    def wrapper() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        fn()

    return wrapper


# --- testcontainers -------------------------------------------------------------------------


def _docker_engine_answers() -> bool:
    """Cheap liveness probe so machines with only a docker CLI skip containers at once."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(DOCKER_PROBE_TIMEOUT_S)
                sock.connect(host.removeprefix("unix://"))
            return True
        if host.startswith("tcp://"):
            address, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
            socket.create_connection((address, int(port)), DOCKER_PROBE_TIMEOUT_S).close()
            return True
    except (OSError, ValueError):
        return False
    # ssh:// and other transports are not probed; fall through to the local cluster.
    return False


def _start_container() -> tuple[PgServer, StopFn]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14 kept the module at the top level
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        CONTAINER_IMAGE, username="postgres", password="postgres", dbname="postgres", driver=None
    )
    container.start()
    stop = _once(container.stop)
    try:
        dsn = make_conninfo(
            host=container.get_container_host_ip(),
            port=str(container.get_exposed_port(5432)),
            user="postgres",
            password="postgres",
            dbname="postgres",
        )
        return _probe_server(dsn, "testcontainers"), stop
    except BaseException:
        stop()
        raise


# --- local cluster --------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCluster:
    """A local cluster this process started: its server, directory and stop function."""

    server: PgServer
    root: Path
    stop: StopFn

    def write_hba(self, text: str) -> None:
        """Replace pg_hba.conf and reload (the tests of pg_hba's audit)."""
        (self.root / "data" / "pg_hba.conf").write_text(text)
        self.reload()

    def reload(self) -> None:
        _pg_run(_pg_ctl(self.root, "reload"), self.root)


# TCP only over TLS; the Unix socket (no TLS there) for the superuser and everyone.
HBA_TLS_ONLY = ("local all all trust\n"
                "hostssl all all 127.0.0.1/32 trust\n"
                "hostssl all all ::1/128 trust\n")
HBA_PLAIN = ("local all all trust\n"
             "host all all 127.0.0.1/32 trust\n"
             "host all all ::1/128 trust\n")


def start_local_cluster(tls: bool = True, ca: CertificateAuthority | None = None,
                        server_dns: tuple[str, ...] = ("localhost",)) -> LocalCluster:
    """A throwaway cluster: with `tls`, ssl = on with a server certificate for
    `server_dns` and 127.0.0.1 signed by `ca` (made here when None), and pg_hba.conf
    admitting TCP only over TLS; without, ssl = off and plain `host` lines."""
    _require_local_binaries()
    root = _make_cluster_dir()
    stop = _once(lambda: _stop_local_cluster(root))
    try:
        _pg_run([str(PG_BIN / "initdb"), *_initdb_args(root)], root)
        root_cert = ""
        extra: dict[str, str] = {"ssl": "off"}
        if tls:
            ca = ca or make_ca(root)
            cert = make_server_cert(ca, root, dns=server_dns, owner=OS_SUPERUSER)
            extra = {"ssl": "on", "ssl_cert_file": str(cert.cert_file),
                     "ssl_key_file": str(cert.key_file)}
            root_cert = str(ca.cert_file)
        (root / "data" / "pg_hba.conf").write_text(HBA_TLS_ONLY if tls else HBA_PLAIN)
        port = _start_postmaster(root, extra)
        dsn = make_conninfo(host="127.0.0.1", port=str(port), user=OS_SUPERUSER, dbname="postgres")
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            # As a server set up for pg_cron has it: the extension in cron.database_name.
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        return LocalCluster(_probe_server(dsn, "local-cluster", root_cert), root, stop)
    except BaseException:
        stop()
        raise


def _start_local_cluster() -> tuple[PgServer, StopFn]:
    cluster = start_local_cluster()
    return cluster.server, cluster.stop


def _require_local_binaries() -> None:
    needed = [PG_BIN / "initdb", PG_BIN / "pg_ctl", PG_BIN / "postgres", PG_CRON_LIB]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise RuntimeError(
            f"PostgreSQL 15 test server unavailable (missing: {', '.join(missing)}); "
            f"run `scripts/setup-postgres.sh` as root, or set {ENV_DSN}"
        )


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _make_cluster_dir() -> Path:
    # Under /tmp (not $TMPDIR) so the postgres account can always reach it, and short enough
    # for the 107-byte unix socket path limit.
    root = Path(tempfile.mkdtemp(prefix="mem0-pg-", dir="/tmp"))
    if _running_as_root():
        # Postgres refuses to run as root, so the cluster is owned by the service account.
        shutil.chown(root, OS_SUPERUSER, OS_SUPERUSER)
    return root


def _initdb_args(root: Path) -> list[str]:
    # -U fixes the superuser name even when a non-root user runs the tests.
    data = str(root / "data")
    return [
        "-D",
        data,
        "-U",
        OS_SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]


def _cluster_settings(root: Path, port: int, extra: dict[str, str] | None = None) -> str:
    # Durability is irrelevant for throwaway test data; dropping it makes tests much faster.
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(root),
        "shared_preload_libraries": "pg_cron",
        "cron.database_name": "postgres",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        **(extra or {}),
    }
    return "".join(f"{key} = '{value}'\n" for key, value in settings.items())


def _start_postmaster(root: Path, extra: dict[str, str] | None = None, attempts: int = 3
                      ) -> int:
    """Start the server on a free port; retry if another process grabs the port first."""
    port = _free_port()
    # postgresql.auto.conf is read last, so rewriting it per attempt overrides cleanly.
    (root / "data" / "postgresql.auto.conf").write_text(_cluster_settings(root, port, extra))
    try:
        _pg_run(_pg_ctl(root, "start", "-w", "-t", "60", "-l", str(root / "postgres.log")), root)
    except RuntimeError:
        # The port probe and the bind are not atomic; only that race is worth a retry.
        if attempts <= 1 or "in use" not in _log_tail(root):
            raise
        return _start_postmaster(root, extra, attempts - 1)
    return port


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_ctl(root: Path, *args: str) -> list[str]:
    return [str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), *args]


def _pg_run(cmd: list[str], root: Path) -> None:
    """Run a PostgreSQL tool as the account that owns the cluster; raise with its output."""
    tool = Path(cmd[0]).name
    if _running_as_root():
        cmd = ["runuser", "-u", OS_SUPERUSER, "--", *cmd]
    # Stray PG* variables (PGPORT, PGDATA, ...) from the caller must not steer the cluster.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{tool} failed "
            f"({result.returncode}): {result.stderr.strip() or result.stdout.strip()}\n"
            f"server log tail:\n{_log_tail(root)}"
        )


def _log_tail(root: Path, lines: int = 20) -> str:
    try:
        return "\n".join((root / "postgres.log").read_text().splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _stop_local_cluster(root: Path) -> None:
    # Immediate mode: the data is disposable, so skip the shutdown checkpoint.
    if (root / "data" / "postmaster.pid").exists():
        # A failure means the server is already gone; removing the directory is what matters.
        with contextlib.suppress(RuntimeError):
            _pg_run(_pg_ctl(root, "-m", "immediate", "stop"), root)
    shutil.rmtree(root, ignore_errors=True)
