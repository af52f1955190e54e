"""Image scanning: registry scanning configuration, scans, findings, layer inventories,
the advisory database, Inspector2 account status.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ecr_registry_scanning",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("scan_type", sa.String(16), nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "scan_images",
        sa.Column("image_id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(140), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("vuln_source_updated_at", TS),
        sa.Column("inventory", sa.JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_scan_images_status", "scan_images", ["status"])
    op.create_table(
        "scan_image_keys",
        sa.Column("image_id", sa.Integer, primary_key=True),
        sa.Column("ecosystem", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
    )
    op.create_index("ix_scan_image_keys_pkg", "scan_image_keys", ["ecosystem", "name"])
    op.create_table(
        "scan_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("advisory_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("fix_available", sa.Boolean, nullable=False),
        sa.Column("package_name", sa.String(512), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("first_observed_at", TS, nullable=False),
        sa.Column("last_observed_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("image_id", "key", name="uq_scan_finding"),
    )
    op.create_index("ix_scan_findings_scope", "scan_findings",
                    ["account_id", "region", "status"])
    op.create_table(
        "scan_layer_cache",
        sa.Column("digest", sa.String(140), primary_key=True),
        sa.Column("cataloger_version", sa.Integer, primary_key=True),
        sa.Column("inventory", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "vuln_advisories",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("modified", sa.String(64), nullable=False),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("imported_at", TS, nullable=False),
    )
    op.create_index("ix_vuln_advisories_imported", "vuln_advisories", ["imported_at"])
    op.create_table(
        "vuln_affected",
        sa.Column("advisory_id", sa.String(255), primary_key=True),
        sa.Column("ecosystem", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
    )
    op.create_index("ix_vuln_affected_pkg", "vuln_affected", ["ecosystem", "name"])
    op.create_table(
        "vuln_sources",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("withdrawn", sa.Integer, nullable=False),
        sa.Column("imported_at", TS, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "inspector_accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("resource_type", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inspector_configuration",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("rescan_duration", sa.String(16), nullable=False),
        sa.Column("pull_date_rescan_duration", sa.String(16)),
        sa.Column("pull_date_rescan_mode", sa.String(16)),
        sa.Column("updated_at", TS, nullable=False),
    )
