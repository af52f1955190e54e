from pathlib import Path

from corral.app import providers
from corral.aws.coverage import render
from corral.config import Settings


def test_coverage_doc_is_generated_from_the_code():
    committed = (Path(__file__).parents[2] / "docs" / "COVERAGE.md").read_text()
    assert committed == render(providers(Settings())), (
        "docs/COVERAGE.md is stale: run `python -m corral.aws.coverage > docs/COVERAGE.md`")
    assert "- [x] CreateRepository" in committed
    assert "- [ ] DescribePullThroughCacheRules" in committed
