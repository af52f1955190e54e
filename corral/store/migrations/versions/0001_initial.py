"""Initial schema: accounts, access keys, resource tags, ECR repositories.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column("secret_access_key", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("principal_arn", sa.String(2048), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("session_token", sa.String(4096)),
        sa.Column("expires_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "resource_tags",
        sa.Column("arn", sa.String(2048), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
    )
    op.create_table(
        "ecr_repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("image_tag_mutability", sa.String(32), nullable=False),
        sa.Column("mutability_exclusion_filters", sa.JSON, nullable=False),
        sa.Column("scan_on_push", sa.Boolean, nullable=False),
        sa.Column("encryption_type", sa.String(16), nullable=False),
        sa.Column("kms_key", sa.String(2048)),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_ecr_repo_name"),
    )
    op.create_index(
        "ix_ecr_repo_scope", "ecr_repositories", ["account_id", "region", "name"]
    )
