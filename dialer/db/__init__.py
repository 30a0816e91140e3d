"""The record: SQLAlchemy 2 models, Alembic migrations, repositories, hopper and ledger writer.

Start at :class:`dialer.db.database.Database` (one object built from Settings) and
:class:`dialer.db.ledger.LedgerWriter`; the module docstrings there list the public API.
"""
