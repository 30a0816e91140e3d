"""agents' work assignment: work_mode, work_campaign_id

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

`dialer queue assign` (issue 9) puts an agent on inbound callers only, outbound calls only, or
both with inbound or outbound first, and on a campaign; the record keeps both so they outlive a
re-login and a controller restart.  Existing agents become what they were: blended, inbound
first, no campaign preference.

SQLite: Alembic's batch copy (the only way to get a named, reflectable foreign key there).
Dropping the old ``agents`` table with foreign keys on cascades into agent_campaigns, so those
rows are kept aside and put back in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FK = "fk_agents_work_campaign_id_campaigns"


def upgrade() -> None:
    """Apply."""
    work_mode = sa.Column(
        "work_mode", sa.String(length=16), nullable=False, server_default="inbound_first"
    )
    if op.get_bind().dialect.name == "sqlite":
        with _agent_campaigns_kept():
            with op.batch_alter_table("agents", recreate="always") as batch:
                batch.add_column(work_mode)
                batch.add_column(sa.Column("work_campaign_id", sa.Integer(), nullable=True))
                batch.create_foreign_key(
                    FK, "campaigns", ["work_campaign_id"], ["id"], ondelete="SET NULL"
                )
        return
    op.add_column("agents", work_mode)
    op.add_column("agents", sa.Column("work_campaign_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        FK, "agents", "campaigns", ["work_campaign_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name == "sqlite":
        with _agent_campaigns_kept():
            with op.batch_alter_table("agents", recreate="always") as batch:
                batch.drop_constraint(FK, type_="foreignkey")
                batch.drop_column("work_campaign_id")
                batch.drop_column("work_mode")
        return
    op.drop_constraint(FK, "agents", type_="foreignkey")
    op.drop_column("agents", "work_campaign_id")
    op.drop_column("agents", "work_mode")


@contextlib.contextmanager
def _agent_campaigns_kept() -> Iterator[None]:
    """Put agent_campaigns back after a batch copy of ``agents`` (SQLite only)."""
    bind = op.get_bind()
    kept = bind.execute(sa.text("SELECT agent_id, campaign_id FROM agent_campaigns")).all()
    yield
    bind.execute(sa.text("DELETE FROM agent_campaigns"))
    if kept:
        bind.execute(
            sa.text("INSERT INTO agent_campaigns (agent_id, campaign_id) VALUES (:a, :c)"),
            [{"a": a, "c": c} for a, c in kept],
        )
