"""ELBv2 (issue 11): load balancers, listeners, rules, target groups and registered targets.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

TS = sa.DateTime(timezone=True)
DOC = sa.JSON()
ARN = 512


def upgrade() -> None:
    op.create_table(
        "elb_load_balancers",
        sa.Column("arn", sa.String(ARN), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_elb_load_balancer_name"),
    )
    op.create_table(
        "elb_listeners",
        sa.Column("arn", sa.String(ARN), primary_key=True),
        sa.Column("load_balancer_arn", sa.String(ARN), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("doc", DOC, nullable=False),
        sa.UniqueConstraint("load_balancer_arn", "port", name="uq_elb_listener_port"),
    )
    op.create_index("ix_elb_listeners_load_balancer_arn", "elb_listeners",
                    ["load_balancer_arn"])
    op.create_table(
        "elb_rules",
        sa.Column("arn", sa.String(ARN), primary_key=True),
        sa.Column("listener_arn", sa.String(ARN), nullable=False),
        sa.Column("priority", sa.Integer),
        sa.Column("doc", DOC, nullable=False),
        sa.UniqueConstraint("listener_arn", "priority", name="uq_elb_rule_priority"),
    )
    op.create_index("ix_elb_rules_listener_arn", "elb_rules", ["listener_arn"])
    op.create_table(
        "elb_target_groups",
        sa.Column("arn", sa.String(ARN), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("doc", DOC, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_elb_target_group_name"),
    )
    op.create_table(
        "elb_targets",
        sa.Column("target_group_arn", sa.String(ARN), primary_key=True),
        sa.Column("target_id", sa.String(64), primary_key=True),
        sa.Column("port", sa.Integer, primary_key=True),
        sa.Column("availability_zone", sa.String(32)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("description", sa.String(256)),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("drain_until", TS),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("elb_targets", "elb_target_groups", "elb_rules", "elb_listeners",
                  "elb_load_balancers"):
        op.drop_table(table)
