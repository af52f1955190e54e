"""Tables of the state store (SQLAlchemy Core).

Every service-owned row carries ``account_id`` and ``region``: accounts and regions are real
namespaces, and every query is scoped by both. The migrations in ``migrations/versions`` create
exactly these tables; a change here needs a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps. SQLite keeps them as epoch seconds (REAL): exact to the
    microsecond, ordered, and read back without parsing a string per row."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Float())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.timestamp() if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, UTC)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class JsonValue(TypeDecorator):
    """JSON documents. On SQLite, stored as compact text and read back with orjson (plain
    JSON decoding was a tenth of a 50-repository list call)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else JSON())

    def process_bind_param(self, value, dialect):
        if dialect.name != "sqlite" or value is None:
            return value
        return orjson.dumps(value).decode()

    def process_result_value(self, value, dialect):
        if dialect.name != "sqlite" or value is None:
            return value
        return orjson.loads(value)


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Long-term keys (root, IAM users) and temporary keys (STS sessions, with token and expiry).
access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("secret_access_key", String(128), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("principal_arn", String(2048), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("session_token", String(4096)),
    Column("expires_at", UTCDateTime()),
    Column("status", String(16), nullable=False, default="Active"),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Tags of any taggable resource, keyed by its ARN (which holds account and region).
resource_tags = Table(
    "resource_tags",
    metadata,
    Column("arn", String(2048), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", String(512), nullable=False),
)

ecr_repositories = Table(
    "ecr_repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("image_tag_mutability", String(32), nullable=False),
    Column("mutability_exclusion_filters", JsonValue(), nullable=False),
    Column("scan_on_push", Boolean, nullable=False),
    Column("encryption_type", String(16), nullable=False),
    Column("kms_key", String(2048)),
    UniqueConstraint("account_id", "region", "name", name="uq_ecr_repo_name"),
)
Index("ix_ecr_repo_scope", ecr_repositories.c.account_id, ecr_repositories.c.region,
      ecr_repositories.c.name)

# --- registry and images -------------------------------------------------------------------

# Blobs a repository may serve: uploaded to it, mounted into it, or referenced by its images.
ecr_repository_blobs = Table(
    "ecr_repository_blobs",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("digest", String(140), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("ix_repo_blobs_digest", ecr_repository_blobs.c.digest)

ecr_images = Table(
    "ecr_images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, nullable=False),
    Column("digest", String(140), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_media_type", String(255)),
    Column("artifact_type", String(255)),
    Column("size", BigInteger, nullable=False),  # imageSizeInBytes as ECR computes it
    Column("manifest_size", BigInteger, nullable=False),
    Column("subject_digest", String(140)),
    Column("pushed_at", UTCDateTime(), nullable=False),
    Column("last_pulled_at", UTCDateTime()),
    UniqueConstraint("repository_id", "digest", name="uq_ecr_image_digest"),
)
Index("ix_ecr_images_subject", ecr_images.c.repository_id, ecr_images.c.subject_digest)

ecr_image_tags = Table(
    "ecr_image_tags",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("tag", String(300), primary_key=True),
    Column("image_id", Integer, nullable=False),
)
Index("ix_ecr_image_tags_image", ecr_image_tags.c.image_id)

# What an image's manifest references: blobs (config, layers) and child manifests (indexes).
ecr_image_refs = Table(
    "ecr_image_refs",
    metadata,
    Column("image_id", Integer, primary_key=True),
    Column("digest", String(140), primary_key=True),
    Column("kind", String(16), nullable=False),  # blob | manifest
    Column("size", BigInteger, nullable=False),
)
Index("ix_ecr_image_refs_digest", ecr_image_refs.c.digest)

registry_uploads = Table(
    "registry_uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_id", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Registry passwords from GetAuthorizationToken, stored as sha256 and bound to a principal.
ecr_auth_tokens = Table(
    "ecr_auth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("access_key_id", String(128), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("principal_arn", String(2048), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("principal_type", String(32), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)
