"""Registry scanning rules: the documented filter truth table and the frequency decision
(ECR user guide, image scanning, "Using filters"; shared/reference ecr-registry-and-auth.md §6)."""

from __future__ import annotations

import pytest

from corral.ecr.scanning import ScanningConfiguration, filter_matches, frequency

REPOS = ("prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo")
TRUTH = {
    "prod": (1, 1, 1, 1, 1),
    "*prod": (1, 1, 0, 0, 0),
    "prod*": (1, 0, 1, 0, 1),
    "*prod*": (1, 1, 1, 1, 1),
    "prod*repo": (0, 0, 1, 0, 1),
}


@pytest.mark.parametrize(("pattern", "repo", "expected"), [
    pytest.param(f, r, bool(v), id=f"{f} vs {r}")
    for f, row in TRUTH.items() for r, v in zip(REPOS, row, strict=True)])
def test_documented_filter_truth_table(pattern, repo, expected):
    assert filter_matches(pattern, repo) is expected


def _rule(freq: str, *filters: str) -> dict:
    return {"scanFrequency": freq,
            "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters]}


@pytest.mark.parametrize(("config", "repo", "repo_scan_on_push", "expected"), [
    pytest.param(ScanningConfiguration(), "app", False, "MANUAL", id="basic-default-manual"),
    pytest.param(ScanningConfiguration(), "app", True, "SCAN_ON_PUSH", id="basic-repo-setting"),
    pytest.param(ScanningConfiguration("BASIC", [_rule("SCAN_ON_PUSH", "prod")]), "my-prod",
                 False, "SCAN_ON_PUSH", id="basic-rule"),
    pytest.param(ScanningConfiguration("ENHANCED", []), "anything", False, "CONTINUOUS_SCAN",
                 id="enhanced-no-rules-all-continuous"),
    pytest.param(ScanningConfiguration("ENHANCED", [_rule("SCAN_ON_PUSH", "*"),
                                                    _rule("CONTINUOUS_SCAN", "prod*")]),
                 "prod-api", False, "CONTINUOUS_SCAN", id="enhanced-continuous-wins"),
    pytest.param(ScanningConfiguration("ENHANCED", [_rule("SCAN_ON_PUSH", "*"),
                                                    _rule("CONTINUOUS_SCAN", "prod*")]),
                 "dev-api", False, "SCAN_ON_PUSH", id="enhanced-scan-on-push"),
    pytest.param(ScanningConfiguration("ENHANCED", [_rule("CONTINUOUS_SCAN", "prod*")]),
                 "dev-api", True, None, id="enhanced-unmatched-not-scanned"),
])
def test_scan_frequency(config, repo, repo_scan_on_push, expected):
    assert frequency(config, repo, repo_scan_on_push) == expected
