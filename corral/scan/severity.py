"""Severity of an advisory for one package: CVSS scores computed from the vectors (the ``cvss``
library), else the record's own rating; bands per Amazon Inspector (findings-understanding-
severity): CVSS 3/4 0 INFORMATIONAL, 0.1 LOW, 4.0 MEDIUM, 7.0 HIGH, 9.0 CRITICAL; CVSS 2 has
no CRITICAL (NVD v2 bands). Nothing scored: UNTRIAGED (Inspector) / UNDEFINED (ECR basic).
"""

from __future__ import annotations

from dataclasses import dataclass

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

GHSA_RATING = {"LOW": "LOW", "MODERATE": "MEDIUM", "MEDIUM": "MEDIUM", "HIGH": "HIGH",
               "CRITICAL": "CRITICAL"}
UBUNTU_RATING = {"negligible": "INFORMATIONAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                 "critical": "CRITICAL"}
ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED", "UNDEFINED")


@dataclass(frozen=True)
class Score:
    version: str  # "2.0" | "3.1" | "4.0"
    vector: str
    score: float


@dataclass(frozen=True)
class Severity:
    label: str  # CRITICAL … INFORMATIONAL, or UNTRIAGED
    scores: tuple[Score, ...] = ()
    rating: str = ""  # the record's own rating text, if any

    @property
    def best(self) -> Score | None:
        by_version = {s.version[0]: s for s in self.scores}
        return by_version.get("3") or by_version.get("4") or by_version.get("2")

    def score_of(self, major: str) -> Score | None:
        return next((s for s in self.scores if s.version.startswith(major)), None)


def band(score: float, major: str = "3") -> str:
    if major == "2":
        return "HIGH" if score >= 7.0 else "MEDIUM" if score >= 4.0 else "LOW"
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW" if score > 0 else "INFORMATIONAL"


def _score(kind: str, vector: str) -> Score | None:
    try:
        if kind == "CVSS_V3":
            c = CVSS3(vector)
            return Score(vector.split("/")[0].split(":")[1], vector, float(c.base_score))
        if kind == "CVSS_V4":
            return Score("4.0", vector, float(CVSS4(vector).base_score))
        if kind == "CVSS_V2":
            return Score("2.0", vector, float(CVSS2(vector).base_score))
    except (CVSSError, ValueError, IndexError, KeyError):
        return None
    return None


def assess(record: dict, entries: list[dict]) -> Severity:
    entries_sev = [s for e in entries for s in (e.get("severity") or [])]
    items = entries_sev or record.get("severity") or []
    scores, rating = [], ""
    for item in items:
        if not isinstance(item, dict):
            continue
        kind, value = item.get("type", ""), str(item.get("score", ""))
        if kind == "Ubuntu":
            rating = value.lower()
            continue
        s = _score(kind, value)
        if s:
            scores.append(s)
    sev = Severity("UNTRIAGED", tuple(scores), rating)
    if sev.best is not None:
        return Severity(band(sev.best.score, sev.best.version[0]), sev.scores, rating)
    if rating in UBUNTU_RATING:
        return Severity(UBUNTU_RATING[rating], sev.scores, rating)
    own = str((record.get("database_specific") or {}).get("severity", "")).upper()
    if own in GHSA_RATING:
        return Severity(GHSA_RATING[own], sev.scores, own)
    return sev
