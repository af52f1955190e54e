"""Inspector finding queries in SQL: scan_findings gains the columns its filters, sorts and
aggregations need (image digest, repository name, image pushedAt, the package's version,
release, epoch and arch as Inspector shows them, its path and layer, aliases, vendor
severity, platform, severity rank), ``score`` becomes NOT NULL (0 when unscored, so its sort
needs no coalesce), and every sort key gets its (account, region, key, id) index for keyset
pages; existing rows are back-filled from their ``data``, their image and its scan, a chunk
at a time (never the whole table in memory).

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
    sa.Column("repository_name", sa.String(256), nullable=False, server_default=""),
    sa.Column("image_pushed_at", sa.DateTime(timezone=True)),
    sa.Column("package_version", sa.String(512), nullable=False, server_default=""),
    sa.Column("package_release", sa.String(512), nullable=False, server_default=""),
    sa.Column("package_epoch", sa.Integer),
    sa.Column("package_arch", sa.String(64), nullable=False, server_default=""),
    sa.Column("package_path", sa.String(1024), nullable=False, server_default=""),
    sa.Column("layer_hash", sa.String(140), nullable=False, server_default=""),
    sa.Column("aliases", sa.Text, nullable=False, server_default="||"),
    sa.Column("vendor_severity", sa.String(64), nullable=False, server_default=""),
    sa.Column("platform", sa.String(64), nullable=False, server_default=""),
    sa.Column("severity_rank", sa.Integer, nullable=False, server_default="-1"),
]

# the sort keys with an (account_id, region, key, id) index (ix_scan_findings_<key>)
KEYS = ("id", "severity_rank", "first_observed_at", "last_observed_at", "score",
        "advisory_id", "repository_name", "image_pushed_at", "package_name", "image_digest")

findings = sa.table("scan_findings", sa.column("id", sa.Integer),
                    sa.column("image_id", sa.Integer), sa.column("severity", sa.String),
                    sa.column("score", sa.Float), sa.column("data", sa.Text),
                    *[sa.column(c.name) for c in COLUMNS])
scans = sa.table("scan_images", sa.column("image_id", sa.Integer),
                 sa.column("digest", sa.String), sa.column("inventory", sa.Text))
images = sa.table("ecr_images", sa.column("id", sa.Integer),
                  sa.column("repository_id", sa.Integer), sa.column("digest", sa.String),
                  sa.column("pushed_at"))
repositories = sa.table("ecr_repositories", sa.column("id", sa.Integer),
                        sa.column("name", sa.String))


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("scan_findings", column)
    conn = op.get_bind()
    conn.execute(findings.update().where(findings.c.score.is_(None)).values(score=0.0))
    with op.batch_alter_table("scan_findings") as batch:
        batch.alter_column("score", existing_type=sa.Float, nullable=False, server_default="0")
    for key in KEYS:
        op.create_index(f"ix_scan_findings_{key}", "scan_findings",
                        ["account_id", "region", key, *(["id"] if key != "id" else [])])
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


def _shown(pkg: dict) -> dict:
    # corral.scan.views.shown_package as of this revision: vulnerablePackages' version fields
    version, release = pkg.get("version", ""), pkg.get("release", "")
    deb = pkg.get("type") == "deb"
    if deb and "-" in version:
        version, release = version.split(":", 1)[-1].rsplit("-", 1)
    epoch = pkg.get("epoch")
    if not epoch and deb:
        head = pkg["version"].split(":", 1)[0] if ":" in pkg["version"] else "0"
        epoch = int(head) if head.isdigit() else 0
    return {"package_version": version, "package_release": release, "package_epoch": epoch,
            "package_arch": (pkg.get("arch") or "").upper()}


def _backfill_images(conn) -> None:
    ids = conn.execute(sa.select(scans.c.image_id).order_by(scans.c.image_id)).scalars().all()
    for image_id in ids:  # one inventory in memory at a time
        row = conn.execute(sa.select(scans.c.digest, scans.c.inventory)
                           .where(scans.c.image_id == image_id)).one()
        image = conn.execute(
            sa.select(repositories.c.name, images.c.pushed_at)
            .join(repositories, repositories.c.id == images.c.repository_id)
            .where(images.c.id == image_id, images.c.digest == row.digest)).first()
        conn.execute(findings.update().where(findings.c.image_id == image_id).values(
            image_digest=row.digest, platform=_platform(row.inventory),
            repository_name=image.name if image else "",
            image_pushed_at=image.pushed_at if image else None))


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
            values.append({"b_id": row.id, **_shown(pkg), "package_path": pkg.get("path", ""),
                           "layer_hash": pkg.get("layer", ""),
                           "aliases": "|" + "|".join(data.get("aliases") or []) + "|",
                           "vendor_severity": data.get("rating") or "",
                           "severity_rank": SEVERITY_RANK.get(row.severity, -1)})
        conn.execute(findings.update().where(findings.c.id == sa.bindparam("b_id")), values)
        last = rows[-1].id


def downgrade() -> None:
    for key in KEYS:
        op.drop_index(f"ix_scan_findings_{key}", "scan_findings")
    with op.batch_alter_table("scan_findings") as batch:
        batch.alter_column("score", existing_type=sa.Float, nullable=True, server_default=None)
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
