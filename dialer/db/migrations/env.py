"""Alembic environment: runs on the connection handed over by :func:`dialer.db.engine.upgrade`."""

from __future__ import annotations

from alembic import context

from dialer.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Migrate on the (sync-facing) connection passed in ``config.attributes["connection"]``."""
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `dialer db upgrade` (dialer.db.engine.upgrade)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
