"""IAM: users, groups, roles, policies, sessions, OIDC providers; ECR repository policies.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("unique_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("boundary_arn", sa.String(2048)),
    )
    op.create_table(
        "iam_groups",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("unique_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("group_name", sa.String(128), primary_key=True),
        sa.Column("user_name", sa.String(64), primary_key=True),
    )
    op.create_table(
        "iam_roles",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("unique_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("trust_policy", sa.Text, nullable=False),
        sa.Column("description", sa.String(1000)),
        sa.Column("max_session_duration", sa.Integer, nullable=False),
        sa.Column("boundary_arn", sa.String(2048)),
    )
    op.create_table(
        "iam_policies",
        sa.Column("arn", sa.String(2048), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("unique_id", sa.String(32), nullable=False),
        sa.Column("description", sa.String(1000)),
        sa.Column("default_version", sa.String(16), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("policy_arn", sa.String(2048), primary_key=True),
        sa.Column("version_id", sa.String(16), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("policy_arn", sa.String(2048), primary_key=True),
    )
    op.create_index("ix_iam_attachments_policy", "iam_attachments", ["policy_arn"])
    op.create_table(
        "iam_oidc_providers",
        sa.Column("arn", sa.String(2048), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("url", sa.String(255), nullable=False),
        sa.Column("client_ids", sa.JSON, nullable=False),
        sa.Column("thumbprints", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "iam_sessions",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("role_arn", sa.String(2048)),
        sa.Column("session_name", sa.String(64)),
        sa.Column("session_policy", sa.Text),
        sa.Column("policy_arns", sa.JSON),
        sa.Column("tags", sa.JSON),
        sa.Column("source_identity", sa.String(64)),
        sa.Column("issued_at", TS, nullable=False),
    )
    op.create_table(
        "ecr_repository_policies",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("policy", sa.Text, nullable=False),
    )
    op.create_table(
        "iam_vended_credentials",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("consumer", sa.String(2048), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("access_key_id", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_iam_vended_consumer", "iam_vended_credentials", ["consumer"])
