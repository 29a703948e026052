"""TLS end to end on a server of the test's own: a cluster whose certificate is signed by
a CA this module makes (tests/support/certs.py), serving TLS and admitting TCP only over
it, and the same cluster with ssl = off for the refusals.

Each connection goes through `stack_url` (components/connection.py), as the provider,
the checks and the CLI's do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from components import audit
from components.checks.core import PASS, SKIP, CheckRunError, Context, Phase, Status, run_checks
from components.checks.hba import CODE
from components.checks.tls import check_tls_sessions
from components.cli import main
from components.connection import open_session, stack_url
from components.model import build_model
from components.settings import Settings
from tests.conftest import APP_PASSWORD, TestDatabase, stack_settings
from tests.support.certs import CertificateAuthority, make_ca
from tests.support.testbed import (
    HBA_PLAIN,
    HBA_TLS_ONLY,
    LocalCluster,
    create_database,
    drop_database,
    start_local_cluster,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"), common="test_tls CA")


@pytest.fixture(scope="module")
def cluster(ca: CertificateAuthority) -> Iterator[LocalCluster]:
    started = start_local_cluster(tls=True, ca=ca, server_dns=("localhost",))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def tls_db(cluster: LocalCluster) -> Iterator[TestDatabase]:
    name = create_database(cluster.server)
    try:
        yield TestDatabase(cluster.server, name, cluster.server.dsn_for(name))
    finally:
        drop_database(cluster.server, name)


@pytest.fixture
def ssl_off(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The cluster with ssl = off and plain `host` lines, restored afterwards."""
    with psycopg.connect(cluster.server.admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET ssl = off")
    cluster.write_hba(HBA_PLAIN)  # reloads both
    _wait_for_ssl(cluster, "off")
    try:
        yield cluster
    finally:
        with psycopg.connect(_socket_dsn(cluster), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET ssl = on")
        cluster.write_hba(HBA_TLS_ONLY)
        _wait_for_ssl(cluster, "on")


def _socket_dsn(cluster: LocalCluster, database: str = "postgres") -> str:
    return f"postgresql://postgres@/{database}?host={cluster.root}&port=" \
        f"{psycopg.conninfo.conninfo_to_dict(cluster.server.admin_dsn)['port']}"


def _wait_for_ssl(cluster: LocalCluster, value: str) -> None:
    for _ in range(50):  # a reload is asynchronous
        with psycopg.connect(_socket_dsn(cluster), autocommit=True) as conn:
            if conn.execute("SHOW ssl").fetchone() == (value,):
                return
        time.sleep(0.1)
    raise AssertionError(f"ssl did not become {value}")


def _settings(db: TestDatabase, **raw: object) -> Settings:
    return stack_settings(db, **raw)


def _preflight(url: str, settings: Settings) -> dict[str, tuple[Status, str]]:
    from components.checks.command import run_phase

    report = run_phase("preflight", url, settings)
    return {r.name: (r.status, r.detail) for r in report.results}


def _localhost(url: str) -> str:
    return url.replace("@127.0.0.1:", "@localhost:")


def test_require_connects_encrypted_and_the_check_reports_the_version(
        tls_db: TestDatabase) -> None:
    settings = _settings(tls_db)
    assert settings.ssl_mode == "require"
    url = stack_url(tls_db.dsn, settings)
    assert url.endswith("?sslmode=require")
    status, detail = _preflight(url, settings)["tls"]
    assert status == PASS
    assert detail.startswith("sslMode require: deployer postgres: encrypted, TLSv1.")


def test_verify_full_with_the_root_cert_and_the_right_host_name_connects(
        tls_db: TestDatabase, ca: CertificateAuthority) -> None:
    settings = _settings(tls_db, sslMode="verify-full", sslRootCert=str(ca.cert_file))
    url = stack_url(_localhost(tls_db.dsn), settings)
    assert f"sslmode=verify-full&sslrootcert={ca.cert_file}" in url
    status, detail = _preflight(url, settings)["tls"]
    assert status == PASS, detail
    assert "encrypted, TLSv1." in detail and f"root certificate {ca.cert_file} parses" in detail


def test_verify_full_refuses_another_root_cert_and_a_wrong_host_name(
        tls_db: TestDatabase, ca: CertificateAuthority, tmp_path: Path) -> None:
    other = make_ca(tmp_path, "other", common="another CA")
    settings = _settings(tls_db, sslMode="verify-full", sslRootCert=str(other.cert_file))
    with pytest.raises(CheckRunError) as caught:
        _preflight(stack_url(_localhost(tls_db.dsn), settings), settings)
    assert "certificate verify failed" in str(caught.value)
    assert "the stack's sslMode asks for TLS" in str(caught.value)

    settings = _settings(tls_db, sslMode="verify-full", sslRootCert=str(ca.cert_file))
    wrong_host = tls_db.dsn.replace("@127.0.0.1:", "@wrong-name.invalid:") \
        + "?hostaddr=127.0.0.1"
    with pytest.raises(CheckRunError) as caught:
        _preflight(stack_url(wrong_host, settings), settings)
    assert 'does not match host name "wrong-name.invalid"' in str(caught.value)
    # verify-ca checks the chain, not the name: the same URL connects
    settings = _settings(tls_db, sslMode="verify-ca", sslRootCert=str(ca.cert_file))
    assert _preflight(stack_url(wrong_host, settings), settings)["tls"][0] == PASS


def test_a_root_cert_that_is_not_pem_fails_the_preflight(
        tls_db: TestDatabase, tmp_path: Path) -> None:
    """The file is checked where the connection is made: one that is not PEM fails the
    preflight (here over a URL that does not name it, so the session itself connects)."""
    bogus = tmp_path / "root.crt"
    bogus.write_text("not a certificate\n")
    settings = _settings(tls_db, sslRootCert=str(bogus))
    status, detail = _preflight(tls_db.dsn + "?sslmode=require", settings)["tls"]
    assert (status, detail) == (Status.FAIL, f"sslRootCert {str(bogus)!r} holds no PEM "
                                "certificate")


def _project(tmp_path: Path, db: TestDatabase, **extra: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    raw = {"target": "postgres", "databaseUrl": "postgresql://unused@localhost/unused",
           "appRole": f"app_{db.name}", "appRolePassword": APP_PASSWORD,
           "ownerRole": f"owner_{db.name}", "readonlyRole": f"readonly_{db.name}",
           "readonlyRolePassword": "x", "serviceRole": f"service_{db.name}",
           "serviceRolePassword": "x", **extra}
    (project / "Pulumi.t.yaml").write_text(yaml.safe_dump(
        {"config": {f"mem0infra:{k}": v for k, v in raw.items()}}))
    return project


def test_a_dsn_with_sslmode_disable_is_refused_naming_sslmode(
        tls_db: TestDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, tls_db)
    dsn = tls_db.dsn.replace("postgresql://postgres@", "postgresql://postgres:hunter2@") \
        + "?sslmode=disable"
    code = main(["preflight", "--stack", "t", "--project-dir", str(project), "--dsn", dsn])
    err = capsys.readouterr().err
    assert code == 2
    assert ("error: --dsn (or $MEM0_DATABASE_URL): sslmode=disable is weaker than the "
            "stack's sslMode 'require'") in err
    assert "hunter2" not in err


def test_a_server_without_tls_fails_the_preflight_with_sslmode_named(
        tls_db: TestDatabase, ssl_off: LocalCluster, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, tls_db)
    code = main(["preflight", "--stack", "t", "--project-dir", str(project),
                 "--dsn", tls_db.dsn])
    err = capsys.readouterr().err
    assert code == 2
    assert "server does not support SSL, but SSL was required" in err
    assert "the stack's sslMode asks for TLS: the server must serve it" in err
    # A session that is not encrypted fails the check (a URL without the stack's sslmode
    # reaches the server in clear, which libpq's default, prefer, allows)...
    settings = _settings(tls_db)
    status, detail = _preflight(tls_db.dsn, settings)["tls"]
    assert status == Status.FAIL
    assert detail.startswith("sslMode is require, but deployer postgres: not encrypted (TCP)")
    # ...except over a Unix socket, where libpq ignores sslmode: a warning, not a failure.
    status, detail = _preflight(stack_url(_socket_dsn(ssl_off, tls_db.name), settings),
                                settings)["tls"]
    assert status == PASS
    assert "deployer postgres: not encrypted (a Unix socket)" in detail
    assert "warning: sslMode is require, but deployer postgres connected over a Unix " \
        "socket, where libpq ignores sslmode" in detail


def test_validation_logs_in_as_the_app_role_over_the_exported_url(
        tls_db: TestDatabase) -> None:
    settings = _settings(tls_db)
    with tls_db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(settings.app_role), sql.Literal(APP_PASSWORD)))
    url = stack_url(tls_db.dsn, settings)
    with open_session(url, "test", CheckRunError) as conn:
        outcome = check_tls_sessions(Context(conn, settings, tuple(build_model(settings)), url))
    assert outcome.status == PASS, outcome.detail
    assert f"app role {settings.app_role}: encrypted, TLSv1." in outcome.detail
    with tls_db.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(settings.app_role)))
    with open_session(url, "test", CheckRunError) as conn:
        outcome = check_tls_sessions(Context(conn, settings, tuple(build_model(settings)), url))
    assert outcome.status == Status.FAIL
    assert f"the app role {settings.app_role} could not log in over the stack's URL" \
        in outcome.detail


def _audit_hba(db: TestDatabase, settings: Settings, url: str | None = None):  # type: ignore[no-untyped-def]
    url = url or db.dsn
    check = next(c for c in audit.CHECKS if c.name == CODE)
    with open_session(url, "test", CheckRunError) as conn:
        ctx = Context(conn, settings, tuple(build_model(settings)), url)
        [result] = run_checks(Phase.AUDIT, (check,), ctx, "db", read_only=True).results
    return result


def test_the_audit_flags_a_host_line_for_the_app_role_and_not_a_hostssl_one(
        tls_db: TestDatabase, cluster: LocalCluster) -> None:
    settings = _settings(tls_db)
    app = settings.app_role
    with tls_db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(app)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(
            sql.Identifier(f"stranger_{tls_db.name}")))
    cluster.write_hba(
        HBA_TLS_ONLY  # lines 1-3: local, hostssl 127.0.0.1 and ::1 for all
        + f"host all {app} 10.0.0.0/8 scram-sha-256\n"  # 4: flagged, an error
        + f"hostssl all {app} 192.168.0.0/16 scram-sha-256\n"  # 5: TLS only
        + f"host all stranger_{tls_db.name} 10.0.0.0/8 md5\n"  # 6: not a stack role
        + "host all all 172.16.0.0/12 reject\n"  # 7: refuses
        + f"host {tls_db.name} all 127.0.0.1/32 md5\n"  # 8: loopback: a warning
        + "host other_db all 10.0.0.0/8 md5\n")  # 9: another database
    try:
        result = _audit_hba(tls_db, settings)
        assert result.status == Status.FAIL
        assert [(f.object, f.level) for f in result.findings] == [
            ("pg_hba.conf line 4", "error"), ("pg_hba.conf line 8", "warn")]
        first = result.findings[0]
        assert first.code == CODE
        assert first.message == (f"line 4 (host all {app} 10.0.0.0/8 scram-sha-256) lets {app} "
                                 f"log in to {tls_db.name} over TCP without TLS")
        assert first.fix == (f"make line 4 `hostssl` instead of `host`, or put `hostnossl all "
                             f"{app} 10.0.0.0/8 reject` before it; then SELECT pg_reload_conf()")
        assert result.findings[1].message.endswith("(loopback only)")
    finally:
        cluster.write_hba(HBA_TLS_ONLY)
    assert _audit_hba(tls_db, settings).status == PASS


def test_the_audit_says_when_pg_hba_is_not_visible(tls_db: TestDatabase) -> None:
    settings = _settings(tls_db)
    weak = f"weak_{tls_db.name}"
    with tls_db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(weak)))
    result = _audit_hba(tls_db, settings, tls_db.server.dsn_for(tls_db.name, user=weak))
    assert result.status == SKIP
    assert result.detail.startswith(f"{CODE}: not checked; pg_hba.conf is not visible to "
                                    f"{weak}")
    # the text report says so, where "no findings" alone would read as a pass
    url = tls_db.server.dsn_for(tls_db.name, user=weak)
    with open_session(url, "test", CheckRunError) as conn:
        ctx = Context(conn, settings, tuple(build_model(settings)), url)
        check = next(c for c in audit.CHECKS if c.name == CODE)
        text = run_checks(Phase.AUDIT, (check,), ctx, "db", read_only=True).text()
    assert text.startswith(f"[not checked] {CODE}\n  {CODE}: not checked; pg_hba.conf is "
                           f"not visible to {weak}")
    assert "  to check: audit as a superuser" in text


def test_a_pooler_url_asking_for_less_fails_the_pooler_check_naming_both(
        tls_db: TestDatabase) -> None:
    from components.checks.pooler import check_pooler

    settings = _settings(tls_db, poolerUrl=tls_db.dsn.replace(
        "postgresql://postgres@", "postgresql://postgres:hunter2@") + "?sslmode=prefer")
    url = stack_url(tls_db.dsn, settings)
    with open_session(url, "test", CheckRunError) as conn:
        outcome = check_pooler(Context(conn, settings, tuple(build_model(settings)), url))
    assert outcome.status == Status.FAIL
    assert outcome.detail.startswith("poolerUrl: sslmode=prefer is weaker than the stack's "
                                     "sslMode 'require'")
    assert "hunter2" not in outcome.detail + outcome.hint
