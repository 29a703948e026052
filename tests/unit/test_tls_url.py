"""The one function that gives a stack's connections their TLS (components/connection.py
tls_url / stack_url), and sslMode's resolution per target."""

from __future__ import annotations

import pytest

from components.connection import TlsUrlError, is_socket, stack_url, tls_url
from components.errors import ExitCode
from components.settings import SslMode, parse_settings

POSTGRES = {"target": "postgres", "databaseUrl": "postgresql://deployer:pw@db.example:5432/mem0",
            "appRolePassword": "a", "readonlyRolePassword": "r", "serviceRolePassword": "s"}


def test_auto_resolves_to_require_on_postgres_and_supabase_and_disable_on_embedded() -> None:
    assert parse_settings({}, "dev").ssl_mode == SslMode.DISABLE
    assert parse_settings(POSTGRES, "t").ssl_mode == SslMode.REQUIRE
    supabase = {k: v for k, v in POSTGRES.items() if "olePassword" not in k or k[0] == "a"}
    assert parse_settings({**supabase, "target": "supabase"}, "t").ssl_mode == SslMode.REQUIRE
    verify = parse_settings({**POSTGRES, "sslMode": "verify-full",
                             "sslRootCert": "/etc/ssl/root.crt"}, "t")
    assert (verify.ssl_mode, verify.ssl_root_cert) == ("verify-full", "/etc/ssl/root.crt")


def test_the_url_gets_the_mode_and_the_root_certificate() -> None:
    assert tls_url("postgresql://u:pw@h:5432/db", "require") == \
        "postgresql://u:pw@h:5432/db?sslmode=require"
    assert tls_url("postgresql://u:pw@h/db?application_name=x", "verify-full", "/r/ca.pem") == \
        "postgresql://u:pw@h/db?application_name=x&sslmode=verify-full&sslrootcert=/r/ca.pem"
    assert tls_url("host=h user=u dbname=db", "verify-ca", "/r/ca.pem") == \
        "user=u dbname=db host=h sslmode=verify-ca sslrootcert=/r/ca.pem"
    # disable (embedded only) asks nothing of the URL
    assert tls_url("postgresql://u@h/db", "disable") == "postgresql://u@h/db"


def test_a_stronger_sslmode_in_the_url_is_kept_and_a_weaker_one_refused() -> None:
    kept = "postgresql://u:pw@h/db?sslmode=verify-full"
    assert tls_url(kept, "require") == kept
    assert tls_url("postgresql://u:pw@h/db?sslmode=require", "require").count("sslmode") == 1
    for weaker in ("disable", "allow", "prefer"):
        with pytest.raises(TlsUrlError) as caught:
            tls_url(f"postgresql://u:hunter2@h/db?sslmode={weaker}", "require", "", "--dsn")
        message = str(caught.value)
        assert message.startswith(f"--dsn: sslmode={weaker} is weaker than the stack's "
                                  "sslMode 'require'")
        assert "require, verify-ca, verify-full" in message
        assert "hunter2" not in message
        assert caught.value.exit_code == ExitCode.UNUSABLE
    with pytest.raises(TlsUrlError, match="sslmode=require is weaker than the stack's sslMode "
                       "'verify-full'"):
        tls_url("postgresql://u@h/db?sslmode=require", "verify-full", "/r/ca.pem")


def test_another_root_certificate_in_the_url_is_refused() -> None:
    with pytest.raises(TlsUrlError) as caught:
        tls_url("postgresql://u@h/db?sslrootcert=/a.pem", "verify-ca", "/b.pem")
    assert str(caught.value).startswith(
        "the URL: sslrootcert='/a.pem' differs from the stack's sslRootCert '/b.pem'")


def test_a_unix_socket_url_is_not_refused_libpq_ignores_sslmode_there() -> None:
    socket = "postgresql://u@/db?host=/var/run/postgresql&sslmode=disable"
    assert is_socket(socket) and is_socket("postgresql://u@/db")
    assert not is_socket("postgresql://u@h/db")
    assert tls_url(socket, "require") == socket
    assert tls_url("postgresql://u@/db?host=/tmp", "require").endswith("&sslmode=require")


def test_stack_url_leaves_embedded_specs_alone() -> None:
    settings = parse_settings(POSTGRES, "t")
    assert stack_url("embedded:.pgdata/dev", settings) == "embedded:.pgdata/dev"
    assert stack_url(POSTGRES["databaseUrl"], settings).endswith("?sslmode=require")



def test_a_string_libpq_cannot_read_is_refused_without_echoing_it() -> None:
    with pytest.raises(TlsUrlError) as caught:
        tls_url("postgresql://u:hunter2@h/db?nosuchparameter=1", "require", "", "--dsn")
    assert str(caught.value) == ("--dsn: not a postgresql:// URL or libpq conninfo (value "
                                 "redacted: it may hold a password)")


def test_the_providers_take_sslmode_from_the_stack_config_for_refresh_and_destroy() -> None:
    """Refresh and destroy run without the program: the providers read sslMode from the
    stack's config, and give the configured databaseUrl (or the one state froze) its TLS."""
    from components.provider import ConfiguredTls, current_connection

    props = {"connection": "postgresql://old@db.example/mem0",
             "database": "db.example:5432/mem0"}
    config = {"mem0infra:sslMode": "verify-ca", "mem0infra:sslRootCert": "/r/ca.pem"}
    tls = ConfiguredTls(config.get)
    assert current_connection("postgresql://new:pw@db.example/mem0", props, tls) == \
        "postgresql://new:pw@db.example/mem0?sslmode=verify-ca&sslrootcert=/r/ca.pem"
    assert current_connection(None, props, ConfiguredTls({}.get)) == \
        "postgresql://old@db.example/mem0?sslmode=require"  # auto: require off embedded
    embedded = {"connection": "embedded:.pgdata/dev", "database": "embedded:.pgdata/dev"}
    assert current_connection(None, embedded, ConfiguredTls({}.get)) == "embedded:.pgdata/dev"
