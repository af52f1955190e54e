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

# --- ECR lifecycle policies (migration 0003) -----------------------------------------------

# One policy per repository, as the text the caller put; last_evaluated_at is the real time
# of the last evaluation (GetLifecyclePolicy's lastEvaluatedAt).
ecr_lifecycle_policies = Table(
    "ecr_lifecycle_policies",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("last_evaluated_at", UTCDateTime()),
)

# The latest preview of a repository: its policy text and the expiring images it found.
ecr_lifecycle_previews = Table(
    "ecr_lifecycle_previews",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("results", JsonValue(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# One audit record per image a lifecycle policy expired. Names, not ids: the record outlives
# the repository.
ecr_lifecycle_events = Table(
    "ecr_lifecycle_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("repository_name", String(256), nullable=False),
    Column("image_digest", String(140), nullable=False),
    Column("image_tags", JsonValue(), nullable=False),
    Column("rule_priority", Integer, nullable=False),
    Column("expired_at", UTCDateTime(), nullable=False),
    Column("actor", String(2048), nullable=False),
)
Index("ix_ecr_lifecycle_events_scope", ecr_lifecycle_events.c.account_id,
      ecr_lifecycle_events.c.region, ecr_lifecycle_events.c.id)

# --- IAM and STS (issue 6) -------------------------------------------------------------------
# IAM is global: its rows are scoped by account only. Tags of users, roles and policies live
# in resource_tags under their ARNs; their access keys in access_keys (principal_arn = user).

iam_users = Table(
    "iam_users",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("path", String(512), nullable=False),
    Column("unique_id", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("boundary_arn", String(2048)),
)

iam_groups = Table(
    "iam_groups",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("path", String(512), nullable=False),
    Column("unique_id", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

iam_group_members = Table(
    "iam_group_members",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("group_name", String(128), primary_key=True),
    Column("user_name", String(64), primary_key=True),
)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("path", String(512), nullable=False),
    Column("unique_id", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("trust_policy", Text, nullable=False),
    Column("description", String(1000)),
    Column("max_session_duration", Integer, nullable=False),
    Column("boundary_arn", String(2048)),
)

# Customer managed policies (AWS managed ones are code: corral/iam/managed.py).
iam_policies = Table(
    "iam_policies",
    metadata,
    Column("arn", String(2048), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("name", String(128), nullable=False),
    Column("path", String(512), nullable=False),
    Column("unique_id", String(32), nullable=False),
    Column("description", String(1000)),
    Column("default_version", String(16), nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

iam_policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column("policy_arn", String(2048), primary_key=True),
    Column("version_id", String(16), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Inline policies of users, groups and roles (kind = user | group | role).
iam_inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

iam_attachments = Table(
    "iam_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("policy_arn", String(2048), primary_key=True),
)
Index("ix_iam_attachments_policy", iam_attachments.c.policy_arn)

iam_oidc_providers = Table(
    "iam_oidc_providers",
    metadata,
    Column("arn", String(2048), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("url", String(255), nullable=False),
    Column("client_ids", JsonValue(), nullable=False),
    Column("thumbprints", JsonValue(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# STS sessions behind temporary access keys: the role, the session policy, tags.
iam_sessions = Table(
    "iam_sessions",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("role_arn", String(2048)),
    Column("session_name", String(64)),
    Column("session_policy", Text),  # inline Policy, and PolicyArns' documents at issue time
    Column("policy_arns", JsonValue()),
    Column("tags", JsonValue()),
    Column("source_identity", String(64)),
    Column("issued_at", UTCDateTime(), nullable=False),
)

ecr_repository_policies = Table(
    "ecr_repository_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("policy", Text, nullable=False),
)

# --- image scanning (issue 5: corral/scan, corral/ecr/scan_ops.py) ---------------------------

# PutRegistryScanningConfiguration: scan type and rules per registry.
ecr_registry_scanning = Table(
    "ecr_registry_scanning",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("scan_type", String(16), nullable=False),  # BASIC | ENHANCED
    Column("rules", JsonValue(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per image that has been scanned or is queued: the state machine and the merged
# inventory the continuous re-scan re-matches (no layer reads).
scan_images = Table(
    "scan_images",
    metadata,
    Column("image_id", Integer, primary_key=True),
    Column("digest", String(140), nullable=False),  # image ids can be reused after deletes
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("repository_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),  # PENDING IN_PROGRESS COMPLETE FAILED …
    Column("description", Text, nullable=False),
    Column("frequency", String(16), nullable=False),  # SCAN_ON_PUSH | CONTINUOUS_SCAN | MANUAL
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    Column("vuln_source_updated_at", UTCDateTime()),
    Column("inventory", JsonValue()),
    Column("attempts", Integer, nullable=False, default=0),
)
Index("ix_scan_images_status", scan_images.c.status)

# (ecosystem, package key) pairs in each scanned image: which images an advisory change hits.
scan_image_keys = Table(
    "scan_image_keys",
    metadata,
    Column("image_id", Integer, primary_key=True),
    Column("ecosystem", String(128), primary_key=True),
    Column("name", String(512), primary_key=True),
)
Index("ix_scan_image_keys_pkg", scan_image_keys.c.ecosystem, scan_image_keys.c.name)

scan_findings = Table(
    "scan_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, nullable=False),
    Column("key", String(1024), nullable=False),  # advisory|type|name|version|path
    Column("advisory_id", String(255), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("repository_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # ACTIVE | CLOSED
    Column("severity", String(16), nullable=False),
    # inspectorScore as sorted: 0 when the advisory has no score (0008: NOT NULL, so the
    # INSPECTOR_SCORE sort walks ix_scan_findings_score with no coalesce)
    Column("score", Float, nullable=False, server_default="0"),
    Column("fix_available", Boolean, nullable=False),
    Column("package_name", String(512), nullable=False),
    Column("data", JsonValue(), nullable=False),
    Column("first_observed_at", UTCDateTime(), nullable=False),
    Column("last_observed_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Denormalized at write time (0008) so Inspector's filters, sorts and pages run in SQL
    # without reading ``data`` or the image's inventory: the image digest (with image_id,
    # which image a finding belongs to even after an id is reused), the repository's name and
    # the image's pushedAt (both immutable for an image row), the package as
    # vulnerablePackages shows it (version, release, epoch, arch: corral.scan.views), its file
    # and layer, the advisory's aliases as "|A|B|" (so "|X|" finds one exactly), its vendor
    # severity, the image's Inspector platform, and the severity's rank (UNTRIAGED -1 …).
    Column("image_digest", String(140), nullable=False, server_default=""),
    Column("repository_name", String(256), nullable=False, server_default=""),
    Column("image_pushed_at", UTCDateTime()),
    Column("package_version", String(512), nullable=False, server_default=""),
    Column("package_release", String(512), nullable=False, server_default=""),
    Column("package_epoch", Integer),
    Column("package_arch", String(64), nullable=False, server_default=""),
    Column("package_path", String(1024), nullable=False, server_default=""),
    Column("layer_hash", String(140), nullable=False, server_default=""),
    Column("aliases", Text, nullable=False, server_default="||"),
    Column("vendor_severity", String(64), nullable=False, server_default=""),
    Column("platform", String(64), nullable=False, server_default=""),
    Column("severity_rank", Integer, nullable=False, server_default="-1"),
    UniqueConstraint("image_id", "key", name="uq_scan_finding"),
)
Index("ix_scan_findings_scope", scan_findings.c.account_id, scan_findings.c.region,
      scan_findings.c.status)
# Keyset pages: one index per sort key, (account, region, key, id), so a page of any sort
# seeks its cursor and reads limit + 1 rows in order (FINDING_STATUS: ix_scan_findings_scope,
# whose entries end in the rowid on SQLite). The advisory, package and digest indexes also
# serve the selective filters (vulnerabilityId, vulnerablePackages.name, ecrImageHash) and
# the PACKAGE aggregation's GROUP BY.
SCAN_FINDING_KEYS = ("id", "severity_rank", "first_observed_at", "last_observed_at", "score",
                     "advisory_id", "repository_name", "image_pushed_at", "package_name",
                     "image_digest")
for _key in SCAN_FINDING_KEYS:
    Index(f"ix_scan_findings_{_key}", scan_findings.c.account_id, scan_findings.c.region,
          scan_findings.c[_key], *([scan_findings.c.id] if _key != "id" else []))
del _key

# Per-layer inventories: a layer's catalog depends only on its bytes and the catalogers.
scan_layer_cache = Table(
    "scan_layer_cache",
    metadata,
    Column("digest", String(140), primary_key=True),
    Column("cataloger_version", Integer, primary_key=True),
    Column("inventory", JsonValue(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# The advisory database (OSV records). Shared by every account and region, like Inspector's
# own vulnerability intelligence; not account-owned data.
vuln_advisories = Table(
    "vuln_advisories",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("source", String(255), nullable=False),
    Column("modified", String(64), nullable=False),
    Column("withdrawn", Boolean, nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the record: re-import skips
    Column("record", JsonValue(), nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
)
Index("ix_vuln_advisories_imported", vuln_advisories.c.imported_at)  # data freshness: max()

vuln_affected = Table(
    "vuln_affected",
    metadata,
    Column("advisory_id", String(255), primary_key=True),
    Column("ecosystem", String(128), primary_key=True),
    Column("name", String(512), primary_key=True),
)
Index("ix_vuln_affected_pkg", vuln_affected.c.ecosystem, vuln_affected.c.name)

vuln_sources = Table(
    "vuln_sources",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("path", Text, nullable=False),
    Column("records", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("withdrawn", Integer, nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    Column("seconds", Float, nullable=False),
)

# Inspector2 Enable/Disable per account, region and resource type (ECR, EC2, LAMBDA, …).
inspector_accounts = Table(
    "inspector_accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("resource_type", String(32), primary_key=True),
    Column("status", String(16), nullable=False),  # ENABLED | DISABLED
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Inspector2 UpdateConfiguration: the ECR push-date rescan window per account and region.
inspector_configuration = Table(
    "inspector_configuration",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("rescan_duration", String(16), nullable=False),  # LIFETIME | DAYS_14 | …
    Column("pull_date_rescan_duration", String(16)),
    Column("pull_date_rescan_mode", String(16)),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Role credentials vended to a consumer (an ECS task) and served through the
# container-credentials endpoint; only the consumer's token (stored as sha256) fetches them.
iam_vended_credentials = Table(
    "iam_vended_credentials",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("consumer", String(2048), nullable=False),
    Column("role_arn", String(2048), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("access_key_id", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("ix_iam_vended_consumer", iam_vended_credentials.c.consumer)

# --- ECS --------------------------------------------------------------------------------
# Rows keep the indexed facts as columns and the rest of the AWS shape as a JSON document
# (`doc`), which is what Describe* returns after a few live fields are filled in.

ecs_clusters = Table(
    "ecs_clusters",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("status", String(16), nullable=False),  # ACTIVE | INACTIVE
    Column("created_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),  # settings, configuration, capacity providers
)

ecs_task_definitions = Table(
    "ecs_task_definitions",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("family", String(255), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("status", String(16), nullable=False),  # ACTIVE | INACTIVE | DELETE_IN_PROGRESS
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),  # the TaskDefinition shape
)
Index("ix_ecs_taskdef_status", ecs_task_definitions.c.account_id, ecs_task_definitions.c.region,
      ecs_task_definitions.c.status)

# The local machine as a container instance of a cluster (one row per cluster it serves).
ecs_container_instances = Table(
    "ecs_container_instances",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("cluster", String(255), primary_key=True),
    Column("instance_id", String(64), primary_key=True),  # the UUID in the ARN
    Column("ec2_instance_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # ACTIVE | DRAINING | INACTIVE
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),  # registeredResources, attributes, versionInfo
)

ecs_tasks = Table(
    "ecs_tasks",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("task_id", String(32), primary_key=True),
    Column("cluster", String(255), nullable=False),
    Column("family", String(255), nullable=False),
    Column("started_by", String(128)),
    Column("service", String(255)),
    Column("desired_status", String(16), nullable=False),
    Column("last_status", String(16), nullable=False),
    Column("launch_type", String(16), nullable=False),
    Column("container_instance", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("stopped_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Column("doc", JsonValue(), nullable=False),  # the Task shape, containers included
)
Index("ix_ecs_tasks_cluster", ecs_tasks.c.account_id, ecs_tasks.c.region, ecs_tasks.c.cluster,
      ecs_tasks.c.desired_status)
Index("ix_ecs_tasks_active", ecs_tasks.c.last_status)

ecs_services = Table(
    "ecs_services",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("cluster", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("status", String(16), nullable=False),  # ACTIVE | DRAINING | INACTIVE
    Column("created_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),  # the Service shape, deployments and events
)
Index("ix_ecs_services_status", ecs_services.c.status)

# --- elbv2 (issue 11: corral/elb) -------------------------------------------------------------
# Each ``doc`` is the AWS output shape (LoadBalancer, Listener, Rule, TargetGroup) as Describe
# returns it, plus a private "x-corral" object (attributes, tags) the provider strips.

elb_load_balancers = Table(
    "elb_load_balancers",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),
    UniqueConstraint("account_id", "region", "name", name="uq_elb_load_balancer_name"),
)

elb_listeners = Table(
    "elb_listeners",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("load_balancer_arn", String(512), nullable=False, index=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("port", Integer, nullable=False),
    Column("doc", JsonValue(), nullable=False),
    UniqueConstraint("load_balancer_arn", "port", name="uq_elb_listener_port"),
)

# A listener's rules; its default rule is the row whose priority is NULL.
elb_rules = Table(
    "elb_rules",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("listener_arn", String(512), nullable=False, index=True),
    Column("priority", Integer),
    Column("doc", JsonValue(), nullable=False),
    UniqueConstraint("listener_arn", "priority", name="uq_elb_rule_priority"),
)

elb_target_groups = Table(
    "elb_target_groups",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("doc", JsonValue(), nullable=False),
    UniqueConstraint("account_id", "region", "name", name="uq_elb_target_group_name"),
)

# Registered targets: state initial | healthy | unhealthy | draining (``unused`` is computed).
elb_targets = Table(
    "elb_targets",
    metadata,
    Column("target_group_arn", String(512), primary_key=True),
    Column("target_id", String(64), primary_key=True),
    Column("port", Integer, primary_key=True),
    Column("availability_zone", String(32)),  # None: not given at registration
    Column("state", String(16), nullable=False),
    Column("reason", String(64)),
    Column("description", String(256)),
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("drain_until", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# --- CloudWatch Logs (issue 12: corral/logs) ----------------------------------------------------
# Times are epoch milliseconds (ints), as the Logs API speaks them. Ids are AUTOINCREMENT on
# SQLite so a deleted group's or stream's id is never handed out again: events of a deleted
# stream are purged later, in chunks (logs_purges), and must never show up under a new one.
# ``stored_bytes`` counts the UTF-8 bytes of the stored messages.

logs_groups = Table(
    "logs_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(512), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retention_days", Integer),
    Column("log_group_class", String(32), nullable=False, server_default="STANDARD"),
    Column("kms_key_id", String(256)),
    Column("stored_bytes", BigInteger, nullable=False, server_default="0"),
    Column("doc", JsonValue(), nullable=False),  # deletionProtectionEnabled, …
    UniqueConstraint("account_id", "region", "name", name="uq_logs_group_name"),
    sqlite_autoincrement=True,
)

logs_streams = Table(
    "logs_streams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, nullable=False, index=True),
    Column("name", String(512), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("first_event_ts", BigInteger),
    Column("last_event_ts", BigInteger),
    Column("last_ingestion_time", BigInteger),
    Column("stored_bytes", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("group_id", "name", name="uq_logs_stream_name"),
    sqlite_autoincrement=True,
)

# One row per event; ``id`` is the ingestion order and breaks ties between equal timestamps.
logs_events = Table(
    "logs_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, nullable=False),
    Column("stream_id", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("ingested", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_logs_events_stream", logs_events.c.stream_id, logs_events.c.ts, logs_events.c.id)
Index("ix_logs_events_group", logs_events.c.group_id, logs_events.c.ts, logs_events.c.id)

# Streams deleted (alone or with their group) whose events the retention controller has not
# finished deleting; DeleteLogStream / DeleteLogGroup answer at once instead of holding the
# write lock for a million-row DELETE.
logs_purges = Table(
    "logs_purges",
    metadata,
    Column("stream_id", Integer, primary_key=True, autoincrement=False),
)

logs_metric_filters = Table(
    "logs_metric_filters",
    metadata,
    Column("group_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(512), primary_key=True),
    Column("doc", JsonValue(), nullable=False),  # the MetricFilter shape
)

logs_subscription_filters = Table(
    "logs_subscription_filters",
    metadata,
    Column("group_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(512), primary_key=True),
    Column("doc", JsonValue(), nullable=False),  # the SubscriptionFilter shape
)

logs_queries = Table(
    "logs_queries",
    metadata,
    Column("query_id", String(36), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("doc", JsonValue(), nullable=False),  # queryString, logGroupNames, results, …
)
Index("ix_logs_queries_scope", logs_queries.c.account_id, logs_queries.c.region,
      logs_queries.c.created_at)
