"""Inspector finding queries in SQL: scan_findings gains the columns its filters, sorts and
aggregations need (image digest, package version/path/layer, aliases, platform, severity
rank) and the indexes keyset pages walk; existing rows are back-filled from their ``data``
and their image's scan, a chunk at a time (never the whole table in memory).

Revision ID: 0008
Revises: 0007
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

CHUNK = 1000
SEVERITY_RANK = {"UNTRIAGED": -1, "INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3,
                 "CRITICAL": 4}
COLUMNS = [
    sa.Column("image_digest", sa.String(140), nullable=False, server_default=""),
    sa.Column("package_version", sa.String(512), nullable=False, server_default=""),
    sa.Column("package_path", sa.String(1024), nullable=False, server_default=""),
    sa.Column("layer_hash", sa.String(140), nullable=False, server_default=""),
    sa.Column("aliases", sa.Text, nullable=False, server_default="||"),
    sa.Column("platform", sa.String(64), nullable=False, server_default=""),
    sa.Column("severity_rank", sa.Integer, nullable=False, server_default="-1"),
]

findings = sa.table("scan_findings", sa.column("id", sa.Integer),
                    sa.column("image_id", sa.Integer), sa.column("severity", sa.String),
                    sa.column("data", sa.Text), *[sa.column(c.name) for c in COLUMNS])
scans = sa.table("scan_images", sa.column("image_id", sa.Integer),
                 sa.column("digest", sa.String), sa.column("inventory", sa.Text))


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("scan_findings", column)
    op.create_index("ix_scan_findings_page", "scan_findings", ["account_id", "region", "id"])
    op.create_index("ix_scan_findings_severity", "scan_findings",
                    ["account_id", "region", "severity_rank", "id"])
    op.create_index("ix_scan_findings_advisory", "scan_findings", ["advisory_id"])
    op.create_index("ix_scan_findings_package", "scan_findings", ["package_name"])
    op.create_index("ix_scan_findings_digest", "scan_findings", ["image_digest"])
    conn = op.get_bind()
    _backfill_images(conn)
    _backfill_findings(conn)


def _doc(value):
    """JSON columns are text on SQLite and decoded already on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def _platform(inventory) -> str:
    # corral.scan.catalogers.os_release.platform as of this revision (a migration must not
    # change meaning when that module does)
    os_info = (_doc(inventory) or {}).get("os") or {}
    ident = str(os_info.get("id", "")).upper()
    if not ident:
        return ""
    ver = str(os_info.get("version_id", ""))
    parts = ver.split(".")[:2] if ident == "ALPINE" else ver.split(".")[:1]
    return "_".join([ident, *filter(None, parts)])


def _backfill_images(conn) -> None:
    ids = conn.execute(sa.select(scans.c.image_id).order_by(scans.c.image_id)).scalars().all()
    for image_id in ids:  # one inventory in memory at a time
        row = conn.execute(sa.select(scans.c.digest, scans.c.inventory)
                           .where(scans.c.image_id == image_id)).one()
        conn.execute(findings.update().where(findings.c.image_id == image_id).values(
            image_digest=row.digest, platform=_platform(row.inventory)))


def _backfill_findings(conn) -> None:
    last = 0
    while True:
        rows = conn.execute(sa.select(findings.c.id, findings.c.severity, findings.c.data)
                            .where(findings.c.id > last).order_by(findings.c.id)
                            .limit(CHUNK)).all()
        if not rows:
            return
        values = []
        for row in rows:
            data = _doc(row.data)
            pkg = data.get("package") or {}
            values.append({"b_id": row.id, "package_version": pkg.get("version", ""),
                           "package_path": pkg.get("path", ""),
                           "layer_hash": pkg.get("layer", ""),
                           "aliases": "|" + "|".join(data.get("aliases") or []) + "|",
                           "severity_rank": SEVERITY_RANK.get(row.severity, -1)})
        conn.execute(findings.update().where(findings.c.id == sa.bindparam("b_id")), values)
        last = rows[-1].id


def downgrade() -> None:
    for name in ("page", "severity", "advisory", "package", "digest"):
        op.drop_index(f"ix_scan_findings_{name}", "scan_findings")
    for column in reversed(COLUMNS):
        op.drop_column("scan_findings", column.name)
