"""Shared fixtures: the recorded Asterisk traces, PostgreSQL and Redis.

Tests that need PostgreSQL or Redis use the ``pg_url`` / ``redis_url`` fixtures.  When the
server cannot be reached the test is skipped with the reason, except under CI=true, where a
missing server is a failure: CI must exercise the real parts.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

# Database fixtures (db_url, database, pg_only_url) for the dialer.db tests.
pytest_plugins = ["tests.integration.db_support"]

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT.parent / "shared" / "asterisk" / "traces"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

PG_HOST = os.environ.get("DIALER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DIALER_TEST_PG_PORT", "5432"))
REDIS_HOST = os.environ.get("DIALER_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("DIALER_TEST_REDIS_PORT", "6379"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _missing(what: str) -> None:
    reason = f"{what} is not reachable"
    if IN_CI:
        pytest.fail(f"{reason}; under CI=true this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    """The folder of recorded Asterisk 22 traffic (../shared/asterisk/traces)."""
    if not TRACES.is_dir():
        pytest.fail(f"recorded traces not found at {TRACES}", pytrace=False)
    return TRACES


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session; dropped afterwards."""
    if not _reachable(PG_HOST, PG_PORT):
        _missing(f"PostgreSQL at {PG_HOST}:{PG_PORT}")
    import psycopg

    name = f"dialer_test_{secrets.token_hex(4)}"
    admin = f"host={PG_HOST} port={PG_PORT} dbname=postgres user=postgres"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL ({exc.__class__.__name__}: {exc})")
    yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """SQLAlchemy URL of the session's PostgreSQL test database."""
    return pg_server


@pytest.fixture
def redis_url() -> str:
    """URL of the local Redis; tests must use a unique key prefix (see ``redis_prefix``)."""
    if not _reachable(REDIS_HOST, REDIS_PORT):
        _missing(f"Redis at {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, so tests can share one Redis."""
    return f"dialer-test:{secrets.token_hex(4)}:"
