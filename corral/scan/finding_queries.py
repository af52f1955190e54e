"""Inspector2 finding queries, run in SQL: filters, sorting, keyset pages and aggregations.

One request reads one page, whatever the number of findings in the account::

    ListFindings               select finding (its own columns; images joined for liveness)
                               where scope ∧ filters ∧ (sort key, id) after the cursor
                               order by sort key, id  limit n+1
    ListFindingAggregations    the same where, group by the aggregation's key,
                               having (sort value, key) after the cursor, limit n+1

Every filter Corral supports maps to a column of ``scan_findings`` (denormalized at write
time by corral.scan.state: digest, repository name, pushedAt, the package's version fields
as the finding shows them, path, layer, aliases, vendor severity, platform, severity rank)
or of the image tags joined by image id; an image's inventory JSON is never read. Every sort
key has an (account, region, key, id) index (corral.store.schema), so a page seeks its
cursor instead of sorting the account's findings.

Cursors name the last row's sort value and id (a keyset, not an offset). What that
guarantees while scans write between two pages: findings recorded later have larger ids, so
the default order (id) and sorts on values a finding never changes (FIRST_OBSERVED_AT,
VULNERABILITY_ID, ECR_IMAGE_*, SEVERITY and INSPECTOR_SCORE unless the advisory is
re-scored) neither repeat nor skip a finding already there. Sorts on values a re-scan
updates — LAST_OBSERVED_AT, FINDING_STATUS (a finding closed or reopened) — can repeat a
finding that moved past the cursor or skip one that moved before it, as any cursor over a
changing order does. Filters AWS defines that have no meaning for Corral's findings (EC2,
Lambda, code, network, EPSS, in-use counts) are accepted and ignored, as before.

String filters follow Inspector: positive comparisons (EQUALS, PREFIX) of one field are
alternatives, each NOT_EQUALS excludes; PREFIX is case-sensitive (``substr``, not SQLite's
case-blind LIKE). A multi-valued field (tags, aliases) matches when any value does; an
image without tags matches the value "".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    TypeDecorator,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from corral.aws import arns, pagination
from corral.store.schema import ecr_image_tags, ecr_images, scan_findings

FINDING, IMAGE, TAG = scan_findings.c, ecr_images.c, ecr_image_tags.c
Cond = ColumnElement[bool]
MAX_ID = 2 ** 62  # finding ARNs carry 128-bit ids; SQLite integers are 64-bit
INT64 = range(-2 ** 63, 2 ** 63)  # what an integer column holds

# Fields every Corral finding has the same value in: a filter on them is true or false.
# ecrImageArchitecture: Corral does not record an image's architecture and shows none, so
# only "" (EQUALS, or any PREFIX of it) matches.
CONSTANTS = {"findingType": "PACKAGE_VULNERABILITY", "resourceType": "AWS_ECR_CONTAINER_IMAGE",
             "exploitAvailable": "NO", "vulnerabilitySource": "OSV", "ecrImageArchitecture": ""}


class _strpos(FunctionElement):
    """1-based position of a substring, 0 when absent; case-sensitive on every backend."""

    type = Integer()
    inherit_cache = True


@compiles(_strpos)
def _strpos_default(element, compiler, **kw):
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_strpos, "postgresql")
def _strpos_pg(element, compiler, **kw):
    return f"strpos({compiler.process(element.clauses, **kw)})"


def joined():
    """Findings of live images (an image id can be reused: the digest must match too)."""
    return scan_findings.join(ecr_images, and_(IMAGE.id == FINDING.image_id,
                                               IMAGE.digest == FINDING.image_digest))


def scope(account_id: str, region: str) -> Cond:
    return and_(FINDING.account_id == account_id, FINDING.region == region)


def resource_id(account_id: str, region: str) -> ColumnElement[str]:
    return (literal(arns.ecr_repository(region, account_id, "")) + FINDING.repository_name
            + "/" + FINDING.image_digest)


def title() -> ColumnElement[str]:
    return FINDING.advisory_id + " - " + FINDING.package_name


# --- filters -------------------------------------------------------------------------------


def string_ok(filters: list[dict] | None, values: list[str]) -> bool:
    """The same string filter semantics in Python, for values computed outside SQL."""
    if not filters:
        return True

    def hit(flt: dict, v: str) -> bool:
        want = flt.get("value", "")
        return v.startswith(want) if flt.get("comparison") == "PREFIX" else v == want

    pos = [x for x in filters if x.get("comparison") != "NOT_EQUALS"]
    neg = [x for x in filters if x.get("comparison") == "NOT_EQUALS"]
    if any(hit(x, v) for x in neg for v in values):
        return False
    return not pos or any(hit(x, v) for x in pos for v in values)


def _combine(filters: list[dict], hit: Callable[[str, str], Cond]) -> Cond:
    pos = [hit(x.get("comparison", "EQUALS"), x.get("value", "")) for x in filters
           if x.get("comparison") != "NOT_EQUALS"]
    neg = [not_(hit("EQUALS", x.get("value", ""))) for x in filters
           if x.get("comparison") == "NOT_EQUALS"]
    return and_(or_(*pos) if pos else true(), *neg)


def string(expr, filters: list[dict]) -> Cond:
    def hit(comparison: str, value: str) -> Cond:
        if comparison == "PREFIX":
            return func.substr(expr, 1, len(value)) == value if value else true()
        return expr == value
    return _combine(filters, hit)


def tags(filters: list[dict]) -> Cond:
    def tagged(cond: Cond) -> Cond:
        return exists().where(TAG.image_id == FINDING.image_id, cond)

    def hit(comparison: str, value: str) -> Cond:
        if value == "":
            return true() if comparison == "PREFIX" else not_(tagged(true()))
        if comparison == "PREFIX":
            return tagged(func.substr(TAG.tag, 1, len(value)) == value)
        return tagged(TAG.tag == value)
    return _combine(filters, hit)


def aliases(filters: list[dict]) -> Cond:
    """Aliases are stored as "|A|B|"; "|" is the separator, so a value containing it (OSV ids
    never do) names no single alias and matches nothing."""
    def hit(comparison: str, value: str) -> Cond:
        if "|" in value:
            return false()
        needle = "|" + value + ("" if comparison == "PREFIX" else "|")
        return _strpos(FINDING.aliases, needle) > 0
    return _combine(filters, hit)


def finding_arn(filters: list[dict], account_id: str, region: str) -> Cond:
    """ARNs end in the id as 32 hex digits: EQUALS is one id, PREFIX an id range."""
    stem = arns.build("inspector2", region, account_id, "finding/")

    def hit(comparison: str, value: str) -> Cond:
        if comparison == "PREFIX" and len(value) <= len(stem):
            return true() if stem.startswith(value) else false()
        rest = value[len(stem):]
        if not value.startswith(stem) or len(rest) > 32 or \
                any(c not in "0123456789abcdef" for c in rest) or not rest:
            return false()
        free = 4 * (32 - len(rest)) if comparison == "PREFIX" else 0
        low = int(rest, 16) << free
        if low > MAX_ID:
            return false()
        return FINDING.id.between(low, min(low + (1 << free) - 1, MAX_ID))
    return _combine(filters, hit)


def numbers(expr, filters: list[dict]) -> Cond:
    return or_(*[and_(expr.is_not(None),
                      expr >= x["lowerInclusive"] if "lowerInclusive" in x else true(),
                      expr <= x["upperInclusive"] if "upperInclusive" in x else true())
                 for x in filters])


def dates(expr, filters: list[dict]) -> Cond:
    return or_(*[and_(expr.is_not(None),
                      expr >= x["startInclusive"] if x.get("startInclusive") else true(),
                      expr <= x["endInclusive"] if x.get("endInclusive") else true())
                 for x in filters])


# vulnerablePackages members: the columns that hold them as the finding shows them
PACKAGE_STRINGS = {"name": FINDING.package_name, "version": FINDING.package_version,
                   "release": FINDING.package_release, "architecture": FINDING.package_arch,
                   "filePath": FINDING.package_path, "sourceLayerHash": FINDING.layer_hash}


def _packages(filters: list[dict]) -> Cond:
    """Each PackageFilter is one package's conditions, all of which must hold; the filters of
    the list are alternatives (a finding has one package). sourceLambdaLayerArn: no Corral
    package comes from a Lambda layer, so any value matches nothing."""
    def one(pf: dict) -> Cond:
        conds = [string(col, [pf[k]]) for k, col in PACKAGE_STRINGS.items() if pf.get(k)]
        if pf.get("epoch"):
            conds.append(numbers(FINDING.package_epoch, [pf["epoch"]]))
        if pf.get("sourceLambdaLayerArn"):
            conds.append(true() if string_ok([pf["sourceLambdaLayerArn"]], [""]) else false())
        return and_(true(), *conds)
    return or_(*[one(pf) for pf in filters])


# ListFindings string filters and the column each compares
STRINGS = {"severity": FINDING.severity, "findingStatus": FINDING.status,
           "awsAccountId": FINDING.account_id, "ecrImageRepositoryName": FINDING.repository_name,
           "ecrImageHash": FINDING.image_digest, "ecrImageRegistry": FINDING.account_id,
           "vulnerabilityId": FINDING.advisory_id, "vendorSeverity": FINDING.vendor_severity,
           "fixAvailable": case((FINDING.fix_available == true(), "YES"), else_="NO"),
           "title": title()}
DATES = {"firstObservedAt": FINDING.first_observed_at, "lastObservedAt": FINDING.last_observed_at,
         "updatedAt": FINDING.updated_at, "ecrImagePushedAt": FINDING.image_pushed_at}


def where(fc: dict[str, Any], account_id: str, region: str) -> Cond:
    """ListFindings ``filterCriteria`` as one SQL condition."""
    conds: list[Cond] = [string(col, fc[k]) for k, col in STRINGS.items() if fc.get(k)]
    if fc.get("resourceId"):
        conds.append(string(resource_id(account_id, region), fc["resourceId"]))
    conds += [true() if string_ok(fc[k], [v]) else false()
              for k, v in CONSTANTS.items() if fc.get(k)]
    conds += [numbers(FINDING.score, fc["inspectorScore"])] if fc.get("inspectorScore") else []
    conds += [dates(col, fc[k]) for k, col in DATES.items() if fc.get(k)]
    if fc.get("ecrImageTags"):
        conds.append(tags(fc["ecrImageTags"]))
    if fc.get("relatedVulnerabilities"):
        conds.append(aliases(fc["relatedVulnerabilities"]))
    if fc.get("findingArn"):
        conds.append(finding_arn(fc["findingArn"], account_id, region))
    if fc.get("vulnerablePackages"):
        conds.append(_packages(fc["vulnerablePackages"]))
    return and_(true(), *conds)


# --- keyset pages ---------------------------------------------------------------------------


def after(keys: list[tuple[Any, bool]], values: list[Any]) -> Cond:
    """Rows strictly after ``values`` in the order ``keys`` ((expression, descending) pairs):
    (k1 beyond v1) or (k1 = v1 and k2 beyond v2) or …; one row-value comparison when every
    key runs the same way (SQLite and PostgreSQL then seek the index instead of filtering)."""
    if len({desc for _, desc in keys}) == 1:
        row, cursor = tuple_(*[e for e, _ in keys]), tuple_(*[
            literal(v, e.type) for (e, _), v in zip(keys, values, strict=True)])
        return row < cursor if keys[0][1] else row > cursor
    alternatives = []
    for n, (expr, desc) in enumerate(keys):
        equal = [e == v for (e, _), v in zip(keys[:n], values[:n], strict=True)]
        alternatives.append(and_(*equal, expr < values[n] if desc else expr > values[n]))
    return or_(*alternatives)


def _out(value: Any) -> Any:
    return {"at": value.isoformat()} if isinstance(value, datetime) else value


def _in(value: Any, expr) -> Any:
    """A cursor value checked against the type of the key it stands for, so a forged token
    is a ValueError (a ValidationException), never a database error: ids and counts are
    64-bit integers, timestamps the ``{"at": iso}`` _out wrote, scores finite numbers."""
    sql_type = expr.type.impl if isinstance(expr.type, TypeDecorator) else expr.type
    kind = sql_type.python_type
    if kind is datetime:
        if not (isinstance(value, dict) and value.keys() == {"at"} and
                isinstance(value["at"], str)):
            raise ValueError("invalid token")
        at = datetime.fromisoformat(value["at"])
        if at.tzinfo is None:
            raise ValueError("invalid token")
        try:
            return at.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00
            raise ValueError("invalid token") from None
    if kind is int:
        ok = type(value) is int and value in INT64
    elif kind is float:
        ok = type(value) in (int, float) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError("invalid token")
    return value


def encode(kind: str, values: list[Any]) -> str:
    return pagination.encode({"q": kind, "after": [_out(v) for v in values]})


def decode(token: str | None, kind: str, keys: list) -> list[Any] | None:
    """The cursor's values for ``keys`` (the sort expressions); ValueError when the token is
    not one this query issued."""
    cursor = pagination.decode(token, q=str, after=list)
    if cursor is None:
        return None
    if cursor["q"] != kind or len(cursor["after"]) != len(keys):
        raise ValueError("token of another query")
    return [_in(v, e) for v, e in zip(cursor["after"], keys, strict=True)]


# --- ListFindings ---------------------------------------------------------------------------


def sort_key(field: str | None):
    """The column a SortField orders by; None where every finding has the same value
    (FINDING_TYPE, RESOURCE_TYPE, …): then the id order alone."""
    return {"SEVERITY": FINDING.severity_rank, "FIRST_OBSERVED_AT": FINDING.first_observed_at,
            "LAST_OBSERVED_AT": FINDING.last_observed_at, "INSPECTOR_SCORE": FINDING.score,
            "VULNERABILITY_ID": FINDING.advisory_id, "FINDING_STATUS": FINDING.status,
            "ECR_IMAGE_REPOSITORY_NAME": FINDING.repository_name,
            "ECR_IMAGE_PUSHED_AT": FINDING.image_pushed_at,
            "AWS_ACCOUNT_ID": FINDING.account_id,
            "ECR_IMAGE_REGISTRY": FINDING.account_id}.get(field or "")


@dataclass(frozen=True)
class Page:
    rows: list
    token: str | None


def findings_page(db: Connection, account_id: str, region: str, fc: dict[str, Any],
                  sort: dict[str, str] | None, limit: int, token: str | None) -> Page:
    """One page of findings (rows of scan_findings). Without sortCriteria, findings come in
    the order they were recorded."""
    expr = sort_key(sort["field"]) if sort else None
    desc = bool(sort) and sort.get("sortOrder") == "DESC"
    keys = ([(expr, desc)] if expr is not None else []) + [(FINDING.id, desc)]
    kind = f"findings:{sort['field']}:{sort.get('sortOrder')}" if sort else "findings"
    extra = [expr.label("sort_value")] if expr is not None else []
    query = (select(scan_findings, *extra).select_from(joined())
             .where(scope(account_id, region), where(fc, account_id, region)))
    cursor = decode(token, kind, [e for e, _ in keys])
    if cursor is not None:
        query = query.where(after(keys, cursor))
    order = [e.desc() if d else e.asc() for e, d in keys]
    rows = db.execute(query.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return Page(rows, None)
    last = rows[-1]
    return Page(rows, encode(kind, ([last.sort_value] if extra else []) + [last.id]))


# --- ListFindingAggregations -----------------------------------------------------------------

Filter = Callable[[list[dict], str, str], Cond]  # (the request's filters, account, region)


def _on(expr) -> Filter:
    return lambda filters, account_id, region: string(expr, filters)


def _resource_ids(filters: list[dict], account_id: str, region: str) -> Cond:
    return string(resource_id(account_id, region), filters)


def _tags(filters: list[dict], account_id: str, region: str) -> Cond:
    return tags(filters)


@dataclass(frozen=True)
class Aggregation:
    member: str  # the request's and the response's member name
    group: list  # the group key (response fields k0, k1, …)
    filters: dict[str, Filter]  # the request's filter lists


# TITLE: Corral's title aggregation is by vulnerability: its key, the ``title`` it answers
# and the ``titles`` filter are all the advisory id.
AGGREGATIONS: dict[str, Aggregation] = {
    "PACKAGE": Aggregation("packageAggregation", [FINDING.package_name],
                           {"packageNames": _on(FINDING.package_name)}),
    "REPOSITORY": Aggregation("repositoryAggregation", [FINDING.repository_name],
                              {"repositories": _on(FINDING.repository_name)}),
    "AWS_ECR_CONTAINER": Aggregation(
        "awsEcrContainerAggregation", [FINDING.image_digest, FINDING.repository_name],
        {"imageShas": _on(FINDING.image_digest), "repositories": _on(FINDING.repository_name),
         "resourceIds": _resource_ids, "imageTags": _tags}),
    "TITLE": Aggregation("titleAggregation", [FINDING.advisory_id],
                         {"titles": _on(FINDING.advisory_id),
                          "vulnerabilityIds": _on(FINDING.advisory_id)}),
    "FINDING_TYPE": Aggregation("findingTypeAggregation", [FINDING.account_id], {}),
    "ACCOUNT": Aggregation("accountAggregation", [FINDING.account_id], {}),
    "IMAGE_LAYER": Aggregation(
        "imageLayerAggregation",
        [FINDING.layer_hash, FINDING.repository_name, FINDING.image_digest],
        {"repositories": _on(FINDING.repository_name), "resourceIds": _resource_ids,
         "layerHashes": _on(FINDING.layer_hash)}),
}


def _count(severity: str):
    return func.sum(case((FINDING.severity == severity, 1), else_=0))


def _aggregate_where(request: dict[str, Any], filters: dict[str, Filter], account_id: str,
                     region: str) -> Cond:
    conds: list[Cond] = [FINDING.status == "ACTIVE"]
    conds += [cond(request[name], account_id, region) for name, cond in filters.items()
              if request.get(name)]
    if request.get("findingType") not in (None, "PACKAGE_VULNERABILITY"):
        conds.append(false())
    if request.get("resourceType") not in (None, "AWS_ECR_CONTAINER_IMAGE"):
        conds.append(false())
    return and_(*conds)


def aggregation_page(db: Connection, account_id: str, region: str, kind: str,
                     request: dict[str, Any], limit: int, token: str | None) -> Page:
    """One page of groups of ACTIVE findings: rows carry the key columns (``k0``…),
    ``all``/``medium``/``high``/``critical`` counts, ``images`` (distinct images) and
    ``image_id`` (one image of the group, for tags). Default order: the key, ascending;
    ``sortBy`` (CRITICAL, HIGH, ALL, AFFECTED_IMAGES) orders by that count, DESC unless
    ``sortOrder`` says ASC, then by key."""
    group, filters = AGGREGATIONS[kind].group, AGGREGATIONS[kind].filters
    counts = {"all": func.count(), "medium": _count("MEDIUM"), "high": _count("HIGH"),
              "critical": _count("CRITICAL"), "images": func.count(FINDING.image_id.distinct())}
    by = {"CRITICAL": counts["critical"], "HIGH": counts["high"], "ALL": counts["all"],
          "AFFECTED_IMAGES": counts["images"]}.get(request.get("sortBy") or "")
    keys = ([(by, request.get("sortOrder") != "ASC")] if by is not None else []) + \
        [(g, False) for g in group]
    query = (select(*[g.label(f"k{n}") for n, g in enumerate(group)],
                    *[c.label(name) for name, c in counts.items()],
                    func.max(FINDING.image_id).label("image_id"))
             .select_from(joined())
             .where(scope(account_id, region),
                    _aggregate_where(request, filters, account_id, region))
             .group_by(*group))
    name = f"aggregation:{kind}:{request.get('sortBy')}:{request.get('sortOrder')}"
    cursor = decode(token, name, [e for e, _ in keys])
    if cursor is not None:
        query = query.having(after(keys, cursor))
    order = [e.desc() if d else e.asc() for e, d in keys]
    rows = db.execute(query.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return Page(rows, None)
    last = rows[-1]._mapping
    sort_value = [last[request["sortBy"].lower().replace("affected_images", "images")]] \
        if by is not None else []
    return Page(rows, encode(name, sort_value + [last[f"k{n}"] for n in range(len(group))]))
