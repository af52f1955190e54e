"""CloudWatch Logs (issue 12): log groups, streams, events, purges, metric and subscription
filters, Insights queries.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

MS = sa.BigInteger  # epoch milliseconds
DOC = sa.JSON()


def upgrade() -> None:
    op.create_table(
        "logs_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("retention_days", sa.Integer),
        sa.Column("log_group_class", sa.String(32), nullable=False, server_default="STANDARD"),
        sa.Column("kms_key_id", sa.String(256)),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("doc", DOC, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_logs_group_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "logs_streams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("first_event_ts", MS),
        sa.Column("last_event_ts", MS),
        sa.Column("last_ingestion_time", MS),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("group_id", "name", name="uq_logs_stream_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_logs_streams_group_id", "logs_streams", ["group_id"])
    op.create_table(
        "logs_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.Integer, nullable=False),
        sa.Column("stream_id", sa.Integer, nullable=False),
        sa.Column("ts", MS, nullable=False),
        sa.Column("ingested", MS, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_logs_events_stream", "logs_events", ["stream_id", "ts", "id"])
    op.create_index("ix_logs_events_group", "logs_events", ["group_id", "ts", "id"])
    op.create_table(
        "logs_purges",
        sa.Column("stream_id", sa.Integer, primary_key=True, autoincrement=False),
    )
    for table in ("logs_metric_filters", "logs_subscription_filters"):
        op.create_table(
            table,
            sa.Column("group_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(512), primary_key=True),
            sa.Column("doc", DOC, nullable=False),
        )
    op.create_table(
        "logs_queries",
        sa.Column("query_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
    )
    op.create_index("ix_logs_queries_scope", "logs_queries",
                    ["account_id", "region", "created_at"])


def downgrade() -> None:
    for table in ("logs_queries", "logs_subscription_filters", "logs_metric_filters",
                  "logs_purges", "logs_events", "logs_streams", "logs_groups"):
        op.drop_table(table)
