"""Inspector2 finding queries, run in SQL: filters, sorting, keyset pages and aggregations.

One request reads one page, whatever the number of findings in the account::

    ListFindings               select finding + repository name + pushedAt (narrow joins)
                               where scope ∧ filters ∧ (sort key, id) after the cursor
                               order by sort key, id  limit n+1
    ListFindingAggregations    the same where, group by the aggregation's key,
                               having (sort value, key) after the cursor, limit n+1

Every filter Corral supports maps to a column of ``scan_findings`` (denormalized at write
time by corral.scan.state: digest, package version/path/layer, aliases, platform, severity
rank) or of the image and repository rows joined by primary key; an image's inventory JSON
is never read. Cursors name the last row's sort value and id (a keyset, not an offset), so
findings written between two pages neither repeat nor shift a page. Filters AWS defines that
have no meaning for Corral's findings (EC2, Lambda, code, network, EPSS, in-use counts) are
accepted and ignored, as before.

String filters follow Inspector: positive comparisons (EQUALS, PREFIX) of one field are
alternatives, each NOT_EQUALS excludes; PREFIX is case-sensitive (``substr``, not SQLite's
case-blind LIKE). A multi-valued field (tags, aliases) matches when any value does; an
image without tags matches the value "".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
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
from corral.store.schema import ecr_image_tags, ecr_images, ecr_repositories, scan_findings

f, i, r, tg = scan_findings.c, ecr_images.c, ecr_repositories.c, ecr_image_tags.c
Cond = ColumnElement[bool]
MAX_ID = 2 ** 62  # finding ARNs carry 128-bit ids; SQLite integers are 64-bit

# Fields every Corral finding has the same value in: a filter on them is true or false.
CONSTANTS = {"findingType": "PACKAGE_VULNERABILITY", "resourceType": "AWS_ECR_CONTAINER_IMAGE",
             "exploitAvailable": "NO", "vulnerabilitySource": "OSV"}


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
    return scan_findings.join(ecr_images, and_(i.id == f.image_id, i.digest == f.image_digest)) \
        .join(ecr_repositories, r.id == i.repository_id)


def scope(account_id: str, region: str) -> Cond:
    return and_(f.account_id == account_id, f.region == region)


def resource_id(account_id: str, region: str) -> ColumnElement[str]:
    return literal(arns.ecr_repository(region, account_id, "")) + r.name + "/" + f.image_digest


def title() -> ColumnElement[str]:
    return f.advisory_id + " - " + f.package_name


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
        return exists().where(tg.image_id == f.image_id, cond)

    def hit(comparison: str, value: str) -> Cond:
        if value == "":
            return true() if comparison == "PREFIX" else not_(tagged(true()))
        if comparison == "PREFIX":
            return tagged(func.substr(tg.tag, 1, len(value)) == value)
        return tagged(tg.tag == value)
    return _combine(filters, hit)


def aliases(filters: list[dict]) -> Cond:
    def hit(comparison: str, value: str) -> Cond:
        needle = "|" + value + ("" if comparison == "PREFIX" else "|")
        return _strpos(f.aliases, needle) > 0
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
        return f.id.between(low, min(low + (1 << free) - 1, MAX_ID))
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


def _packages(filters: list[dict]) -> Cond:
    columns = {"name": f.package_name, "version": f.package_version, "filePath": f.package_path,
               "sourceLayerHash": f.layer_hash}
    return and_(*[string(col, [pf[k]]) for pf in filters for k, col in columns.items()
                  if pf.get(k)])


def where(fc: dict[str, Any], account_id: str, region: str) -> Cond:
    """ListFindings ``filterCriteria`` as one SQL condition."""
    fix = case((f.fix_available == true(), "YES"), else_="NO")
    strings = {"severity": f.severity, "findingStatus": f.status, "awsAccountId": f.account_id,
               "ecrImageRepositoryName": r.name, "ecrImageHash": f.image_digest,
               "ecrImageRegistry": f.account_id, "vulnerabilityId": f.advisory_id,
               "fixAvailable": fix, "title": title(),
               "resourceId": resource_id(account_id, region)}
    conds: list[Cond] = [string(col, fc[k]) for k, col in strings.items() if fc.get(k)]
    conds += [true() if string_ok(fc[k], [v]) else false()
              for k, v in CONSTANTS.items() if fc.get(k)]
    conds += [numbers(f.score, fc["inspectorScore"])] if fc.get("inspectorScore") else []
    for k, col in (("firstObservedAt", f.first_observed_at), ("lastObservedAt",
                   f.last_observed_at), ("updatedAt", f.updated_at),
                   ("ecrImagePushedAt", i.pushed_at)):
        if fc.get(k):
            conds.append(dates(col, fc[k]))
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


def _in(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("at"), str):
        return datetime.fromisoformat(value["at"])
    if isinstance(value, (dict, list)):
        raise ValueError("invalid token")
    return value


def encode(kind: str, values: list[Any]) -> str:
    return pagination.encode({"q": kind, "after": [_out(v) for v in values]})


def decode(token: str | None, kind: str, size: int) -> list[Any] | None:
    """The cursor's values; ValueError when the token is not one this query issued."""
    cursor = pagination.decode(token, q=str, after=list)
    if cursor is None:
        return None
    if cursor["q"] != kind or len(cursor["after"]) != size:
        raise ValueError("token of another query")
    return [_in(v) for v in cursor["after"]]


# --- ListFindings ---------------------------------------------------------------------------


def sort_key(field: str | None):
    """The column a SortField orders by; None where every finding has the same value
    (FINDING_TYPE, RESOURCE_TYPE, …): then the id order alone."""
    return {"SEVERITY": f.severity_rank, "FIRST_OBSERVED_AT": f.first_observed_at,
            "LAST_OBSERVED_AT": f.last_observed_at,
            "INSPECTOR_SCORE": func.coalesce(f.score, 0.0),
            "VULNERABILITY_ID": f.advisory_id, "FINDING_STATUS": f.status,
            "ECR_IMAGE_REPOSITORY_NAME": r.name, "ECR_IMAGE_PUSHED_AT": i.pushed_at,
            "AWS_ACCOUNT_ID": f.account_id, "ECR_IMAGE_REGISTRY": f.account_id}.get(field or "")


@dataclass(frozen=True)
class Page:
    rows: list
    token: str | None


def findings_page(db: Connection, account_id: str, region: str, fc: dict[str, Any],
                  sort: dict[str, str] | None, limit: int, token: str | None) -> Page:
    """One page of findings: rows carry every scan_findings column plus ``repo_name`` and
    ``pushed_at``. Without sortCriteria, findings come in the order they were recorded."""
    expr = sort_key(sort["field"]) if sort else None
    desc = bool(sort) and sort.get("sortOrder") == "DESC"
    keys = ([(expr, desc)] if expr is not None else []) + [(f.id, desc)]
    kind = f"findings:{sort['field']}:{sort.get('sortOrder')}" if sort else "findings"
    extra = [expr.label("sort_value")] if expr is not None else []
    query = (select(scan_findings, r.name.label("repo_name"), i.pushed_at, *extra)
             .select_from(joined())
             .where(scope(account_id, region), where(fc, account_id, region)))
    cursor = decode(token, kind, len(keys))
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

# Per aggregation type: its request member, the group key, and the request's filter lists.
AGGREGATIONS: dict[str, tuple[str, list, dict[str, Any]]] = {
    "PACKAGE": ("packageAggregation", [f.package_name], {"packageNames": f.package_name}),
    "REPOSITORY": ("repositoryAggregation", [r.name], {"repositories": r.name}),
    "AWS_ECR_CONTAINER": ("awsEcrContainerAggregation", [f.image_digest, r.name],
                          {"imageShas": f.image_digest, "repositories": r.name,
                           "resourceIds": "resourceId", "imageTags": "tags"}),
    "TITLE": ("titleAggregation", [f.advisory_id],
              {"titles": "title", "vulnerabilityIds": f.advisory_id}),
    "FINDING_TYPE": ("findingTypeAggregation", [f.account_id], {}),
    "ACCOUNT": ("accountAggregation", [f.account_id], {}),
    "IMAGE_LAYER": ("imageLayerAggregation", [f.layer_hash, r.name, f.image_digest],
                    {"repositories": r.name, "resourceIds": "resourceId",
                     "layerHashes": f.layer_hash}),
}


def _count(severity: str):
    return func.sum(case((f.severity == severity, 1), else_=0))


def _aggregate_where(request: dict[str, Any], filters: dict[str, Any], account_id: str,
                     region: str) -> Cond:
    conds: list[Cond] = [f.status == "ACTIVE"]
    for name, col in filters.items():
        if not request.get(name):
            continue
        if isinstance(col, str):  # a computed field, named
            conds.append(tags(request[name]) if col == "tags" else string(
                resource_id(account_id, region) if col == "resourceId" else title(),
                request[name]))
        else:
            conds.append(string(col, request[name]))
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
    _, group, filters = AGGREGATIONS[kind]
    counts = {"all": func.count(), "medium": _count("MEDIUM"), "high": _count("HIGH"),
              "critical": _count("CRITICAL"), "images": func.count(f.image_id.distinct())}
    by = {"CRITICAL": counts["critical"], "HIGH": counts["high"], "ALL": counts["all"],
          "AFFECTED_IMAGES": counts["images"]}.get(request.get("sortBy") or "")
    keys = ([(by, request.get("sortOrder") != "ASC")] if by is not None else []) + \
        [(g, False) for g in group]
    query = (select(*[g.label(f"k{n}") for n, g in enumerate(group)],
                    *[c.label(name) for name, c in counts.items()],
                    func.max(f.image_id).label("image_id"))
             .select_from(joined())
             .where(scope(account_id, region),
                    _aggregate_where(request, filters, account_id, region))
             .group_by(*group))
    name = f"aggregation:{kind}:{request.get('sortBy')}:{request.get('sortOrder')}"
    cursor = decode(token, name, len(keys))
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
