"""Registry: repository blob links, images, tags, image references, uploads, auth tokens.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

TS = sa.DateTime(timezone=True)
DIGEST = sa.String(140)


def upgrade() -> None:
    op.create_table(
        "ecr_repository_blobs",
        sa.Column("repository_id", sa.Integer, primary_key=True),
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_repo_blobs_digest", "ecr_repository_blobs", ["digest"])
    op.create_table(
        "ecr_images",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("artifact_media_type", sa.String(255)),
        sa.Column("artifact_type", sa.String(255)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("manifest_size", sa.BigInteger, nullable=False),
        sa.Column("subject_digest", DIGEST),
        sa.Column("pushed_at", TS, nullable=False),
        sa.Column("last_pulled_at", TS),
        sa.UniqueConstraint("repository_id", "digest", name="uq_ecr_image_digest"),
    )
    op.create_index("ix_ecr_images_subject", "ecr_images", ["repository_id", "subject_digest"])
    op.create_table(
        "ecr_image_tags",
        sa.Column("repository_id", sa.Integer, primary_key=True),
        sa.Column("tag", sa.String(300), primary_key=True),
        sa.Column("image_id", sa.Integer, nullable=False),
    )
    op.create_index("ix_ecr_image_tags_image", "ecr_image_tags", ["image_id"])
    op.create_table(
        "ecr_image_refs",
        sa.Column("image_id", sa.Integer, primary_key=True),
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ecr_image_refs_digest", "ecr_image_refs", ["digest"])
    op.create_table(
        "registry_uploads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ecr_auth_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("access_key_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("principal_arn", sa.String(2048), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("principal_type", sa.String(32), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
