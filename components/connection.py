"""How the provider, checks and CLI reach the database.

A *connection spec* is what resources carry (as a Pulumi secret): either a libpq URL, or
`embedded:<data dir>` for the local development server that `pgserver` runs. Resolving an
embedded spec starts that server when it is not running (refresh and destroy run without
the program, so the provider must be able to bring it up itself).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from components.errors import ExitCode, Mem0InfraError
from components.settings.choices import SslMode

if TYPE_CHECKING:
    from components.settings.values import Settings

EMBEDDED_PREFIX = "embedded:"
DSN_ENV = "MEM0_DATABASE_URL"  # where the CLI's --dsn defaults from


class CommandDsnError(Mem0InfraError):
    """A command was given no database, or one it must not use."""


def command_dsn(given: str | None, settings: Settings, command: str, purpose: str) -> str:
    """The database a CLI command of a stack works on: --dsn, else $MEM0_DATABASE_URL,
    with the stack's TLS (`stack_url`). Never an `embedded:` spec: a command that started
    the dev server would work on a database nobody else reaches. Taking the settings here
    means no command can connect without its stack's sslMode."""
    dsn = given or os.environ.get(DSN_ENV, "")
    if not dsn:
        raise CommandDsnError(
            f"no database to {purpose}: pass --dsn postgresql://USER@HOST:PORT/DB or set "
            f"{DSN_ENV} (the {command} never starts the embedded server)")
    if is_embedded(dsn):
        raise CommandDsnError(
            "--dsn: an 'embedded:' spec is not allowed; allowed: a postgresql:// URL or a "
            f"libpq conninfo (the {command} never starts the embedded server)")
    return stack_url(dsn, settings, DSN_SOURCE)


# libpq's sslmode values, weakest first.
SSL_STRENGTH = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class TlsUrlError(Mem0InfraError):
    """A connection URL asks for less TLS than the stack's sslMode, or names another root
    certificate than sslRootCert."""

    exit_code = ExitCode.UNUSABLE


def is_socket(url: str) -> bool:
    """Whether libpq reaches `url` over a Unix socket (a host that is a directory path,
    or no host at all), where it ignores sslmode: nothing to encrypt locally."""
    params = conninfo_to_dict(url)
    if params.get("hostaddr"):
        return False
    hosts = [h for h in str(params.get("host") or "").split(",") if h]
    return all(h.startswith(("/", "@")) for h in hosts)


def tls_url(url: str, mode: SslMode | str, root_cert: str = "", source: str = "the URL"
            ) -> str:
    """The libpq URL (or conninfo) a connection of a stack uses: `url` with `sslmode=mode`
    and, when given, `sslrootcert=root_cert`.

    A URL that already names an sslmode keeps it when it is at least as strong as `mode`,
    and is refused (TlsUrlError, naming `source`'s parameter and sslMode, never the
    password) when it is weaker, except over a Unix socket, where libpq ignores sslmode.
    A URL naming another sslrootcert than `root_cert` is refused. `disable` (embedded
    only) adds nothing. The one place every connection of a stack gets its TLS from."""
    mode = SslMode(mode)
    if mode in (SslMode.DISABLE, SslMode.AUTO):
        return url
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        # libpq's message may quote the string, password and all
        raise TlsUrlError(f"{source}: not a postgresql:// URL or libpq conninfo (value "
                          "redacted: it may hold a password)") from None
    given = params.get("sslmode")
    add: dict[str, str] = {}
    if given is None:
        add["sslmode"] = str(mode)
    elif given not in SSL_STRENGTH:
        raise TlsUrlError(f"{source}: sslmode={given!r} is not a libpq sslmode; allowed: "
                          f"{', '.join(SSL_STRENGTH)}")
    elif SSL_STRENGTH.index(given) < SSL_STRENGTH.index(mode) and not is_socket(url):
        raise TlsUrlError(
            f"{source}: sslmode={given} is weaker than the stack's sslMode {str(mode)!r}; "
            "remove sslmode from the URL, or give one of "
            f"{', '.join(SSL_STRENGTH[SSL_STRENGTH.index(mode):])}")
    if root_cert:
        named = params.get("sslrootcert")
        if named is None:
            add["sslrootcert"] = root_cert
        elif named != root_cert:
            raise TlsUrlError(
                f"{source}: sslrootcert={named!r} differs from the stack's sslRootCert "
                f"{root_cert!r}; remove sslrootcert from the URL, or set sslRootCert to it")
    if not add:
        return url
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        extra = "&".join(f"{k}={quote(v, safe='/')}" for k, v in add.items())
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return make_conninfo(url, **add)


DSN_SOURCE = f"--dsn (or ${DSN_ENV})"  # what a command's TlsUrlError names


def stack_url(url: str, settings: Settings, source: str = "databaseUrl") -> str:
    """`tls_url` with the stack's sslMode and sslRootCert; `embedded:` specs unchanged
    (they resolve to the local server's socket)."""
    if is_embedded(url):
        return url
    return tls_url(url, settings.ssl_mode, settings.ssl_root_cert, source)


def embedded_spec(data_dir: str) -> str:
    return EMBEDDED_PREFIX + data_dir


def is_embedded(spec: str) -> bool:
    return spec.startswith(EMBEDDED_PREFIX)


def embedded_data_dir(spec: str) -> Path:
    # Relative paths are relative to the Pulumi project directory, which is the working
    # directory of both the program and the dynamic-provider plugin.
    return Path(os.path.abspath(spec[len(EMBEDDED_PREFIX):]))


# One start at a time per process: the dynamic-provider plugin serves four calls at once.
_START_LOCK = threading.Lock()


def _pgserver() -> ModuleType:
    """pgserver, imported on first use: only the embedded target needs it."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir at import, which warns where
        # XDG_RUNTIME_DIR is unset (root shells, CI) and falls back to /tmp.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver
        import pgserver.utils
    return pgserver


def running_embedded(data_dir: Path) -> str | None:
    """The URI of the embedded server of `data_dir` when it is running, else None.

    Reads postmaster.pid only: no lock, no child process (a fork in the plugin, whose gRPC
    threads are running, makes gRPC log a warning into the deployment's output)."""
    try:
        info = _pgserver().utils.PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, ValueError, AssertionError):
        return None  # absent, or half-written while the server starts or stops
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return str(info.get_uri())


class EmbeddedServerError(Mem0InfraError):
    """The embedded server did not start; the message carries what pgserver said."""


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server for `data_dir`; return its URI.

    The server outlives this process (pgserver's cleanup_mode=None): every later command,
    and each provider call of the engine, reuses it until `python -m components dev stop`.
    It is started by a fresh interpreter: pgserver runs initdb and pg_ctl with a
    `preexec_fn` (as root it switches to its own user), which is unsafe where other
    threads run, and in the provider plugin, among gRPC's threads, pg_ctl died of SIGSEGV.
    """
    uri = running_embedded(data_dir)
    if uri is not None:
        return uri
    with _START_LOCK:
        uri = running_embedded(data_dir)
        if uri is None:
            done = subprocess.run(
                [sys.executable, "-c", "import sys; from components.connection import "
                 "start_embedded_here; start_embedded_here(sys.argv[1])", str(data_dir)],
                capture_output=True, text=True, timeout=300, check=False)
            uri = running_embedded(data_dir)
            if done.returncode != 0 or uri is None:
                said = (done.stderr or done.stdout).strip()[-2000:]
                raise EmbeddedServerError(
                    f"the embedded server in {data_dir} did not start: {said}")
        return uri


def start_embedded_here(data_dir: str) -> None:
    """Start the embedded server from this (single-threaded) process; `start_embedded`
    runs it in a fresh interpreter."""
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    _pgserver().get_server(path, cleanup_mode=None)


def stop_embedded(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded server (fast shutdown); True when one was running.

    Signals the postmaster named in postmaster.pid, as pg_ctl does: pgserver's own
    cleanup only stops the server when no other process ever held a handle on it.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)  # left behind by a crash
        return False
    deadline = time.monotonic() + timeout
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the embedded server in {data_dir} did not stop in {timeout}s")
        time.sleep(0.1)
    return True


def resolve_dsn(spec: str) -> str:
    if is_embedded(spec):
        return start_embedded(embedded_data_dir(spec))
    return spec


def connect(spec: str, *, autocommit: bool = False, application: str = "mem0infra"
            ) -> psycopg.Connection:
    """Open a connection with an empty search_path, so every name must be qualified and the
    catalog prints qualified names (the canonical DDL form)."""
    conn = psycopg.connect(resolve_dsn(spec), autocommit=True, connect_timeout=15,
                           application_name=application)
    conn.execute("SELECT pg_catalog.set_config('search_path', '', false)")
    conn.autocommit = autocommit
    return conn


def open_session(spec: str, application: str, error: type[Exception]) -> psycopg.Connection:
    """`connect` in autocommit for a command or a check, whose failure to connect is its
    own error type (exit code 2 on the command line)."""
    try:
        return connect(spec, autocommit=True, application=application)
    except psycopg.Error as exc:
        said = str(exc).strip()
        if "SSL" in said:  # the stack's sslMode asked for TLS the server does not give
            said += (" (the stack's sslMode asks for TLS: the server must serve it, with "
                     "its certificate matching sslRootCert and the host for verify-full; "
                     "docs/security.md, TLS)")
        raise error(f"could not connect to the database ({database_identity(spec)}): "
                    f"{said}") from exc


def database_identity(spec: str) -> str:
    """Where a connection spec points, without credentials: `host:port/dbname`, or the
    embedded spec itself. Two specs with the same identity reach the same objects, so a
    changed password is not a changed database."""
    if is_embedded(spec):
        return spec
    params = conninfo_to_dict(spec)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or "postgres"
    return f"{host}:{port}/{dbname}"


def role_url(url: str, role: str, password: str | None) -> str:
    """The same server and database as `url` (a postgresql:// URL), as another role.

    Supabase's pooler (Supavisor) names users `<role>.<project ref>`: a deployer URL with
    such a suffix gives the app role the same suffix, so the URL works through the pooler.
    """
    parts = urlsplit(url)
    user = parts.username or ""
    suffix = "." + user.split(".", 1)[1] if "." in user else ""
    auth = quote(role + suffix, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))
