"""Generated documents under docs/ are committed and current."""

from __future__ import annotations

from aqstream.docs import configuration_md, openapi_json
from core.settings import PROJECT_ROOT


def test_openapi_schema_is_committed_and_current() -> None:
    committed = (PROJECT_ROOT / "docs" / "openapi.json").read_text()
    assert committed == openapi_json(), "docs/openapi.json is stale: run `aqstream openapi`"


def test_configuration_doc_is_current() -> None:
    committed = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert committed == configuration_md(), "run `aqstream config-doc`"
