"""hopper index in pick order, DNC phone index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The hopper orders by priority DESC, next_dial_after ASC NULLS FIRST, id.  An index in exactly
that order lets PostgreSQL walk it and stop after n dialable rows (fresh and overdue leads come
first within a priority) instead of sorting every ready lead of the campaign on each pick.
The DNC anti-join probes ``dnc.phone`` for the global list or the campaign's: a plain index on
phone serves both (a national registry extract can hold millions of numbers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    pg = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_leads_hopper", table_name="leads")
    op.create_index(
        "ix_leads_hopper",
        "leads",
        [
            "campaign_id",
            "status",
            sa.text("priority DESC"),
            # SQLite puts NULLs first on ASC already and rejects NULLS FIRST in an index.
            sa.text("next_dial_after ASC NULLS FIRST" if pg else "next_dial_after"),
            "id",
        ],
    )
    op.create_index("ix_dnc_phone", "dnc", ["phone"])


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_dnc_phone", table_name="dnc")
    op.drop_index("ix_leads_hopper", table_name="leads")
    op.create_index(
        "ix_leads_hopper", "leads", ["campaign_id", "status", "priority", "next_dial_after"]
    )
