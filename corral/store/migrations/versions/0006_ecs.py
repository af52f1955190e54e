"""ECS: clusters, task definitions, container instances, tasks.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

TS = sa.DateTime(timezone=True)
DOC = sa.JSON()


def _scope() -> list[sa.Column]:
    return [sa.Column("account_id", sa.String(12), primary_key=True),
            sa.Column("region", sa.String(32), primary_key=True)]


def upgrade() -> None:
    op.create_table(
        "ecs_clusters", *_scope(),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
    )
    op.create_table(
        "ecs_task_definitions", *_scope(),
        sa.Column("family", sa.String(255), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
    )
    op.create_index("ix_ecs_taskdef_status", "ecs_task_definitions",
                    ["account_id", "region", "status"])
    op.create_table(
        "ecs_container_instances", *_scope(),
        sa.Column("cluster", sa.String(255), primary_key=True),
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("ec2_instance_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
    )
    op.create_table(
        "ecs_tasks", *_scope(),
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("cluster", sa.String(255), nullable=False),
        sa.Column("family", sa.String(255), nullable=False),
        sa.Column("started_by", sa.String(128)),
        sa.Column("service", sa.String(255)),
        sa.Column("desired_status", sa.String(16), nullable=False),
        sa.Column("last_status", sa.String(16), nullable=False),
        sa.Column("launch_type", sa.String(16), nullable=False),
        sa.Column("container_instance", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("stopped_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("doc", DOC, nullable=False),
    )
    op.create_index("ix_ecs_tasks_cluster", "ecs_tasks",
                    ["account_id", "region", "cluster", "desired_status"])
    op.create_index("ix_ecs_tasks_active", "ecs_tasks", ["last_status"])


def downgrade() -> None:
    for table in ("ecs_tasks", "ecs_container_instances", "ecs_task_definitions",
                  "ecs_clusters"):
        op.drop_table(table)
