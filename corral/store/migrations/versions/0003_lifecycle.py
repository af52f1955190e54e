"""Lifecycle policies, previews, audit records, garbage collection.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ecr_lifecycle_policies",
        sa.Column("repository_id", sa.Integer, primary_key=True),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_evaluated_at", TS),
    )
    op.create_table(
        "ecr_lifecycle_previews",
        sa.Column("repository_id", sa.Integer, primary_key=True),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ecr_lifecycle_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("repository_name", sa.String(256), nullable=False),
        sa.Column("image_digest", sa.String(140), nullable=False),
        sa.Column("image_tags", sa.JSON, nullable=False),
        sa.Column("rule_priority", sa.Integer, nullable=False),
        sa.Column("expired_at", TS, nullable=False),
        sa.Column("actor", sa.String(2048), nullable=False),
    )
    op.create_index("ix_ecr_lifecycle_events_scope", "ecr_lifecycle_events",
                    ["account_id", "region", "id"])
