"""Documents generated from code, committed under docs/ and checked for staleness by tests."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr

from core.settings import PROJECT_ROOT, Settings


def openapi_json() -> str:
    from api.app import create_app

    return json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"


def _default(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return f"`{value.get_secret_value()}` (local default; set a secret in production)"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(PROJECT_ROOT)}` (under the project)"
        except ValueError:
            return f"`{value}`"
    return f"`{value}`"


def configuration_md() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable with the prefix `AQSTREAM_` (also read from a",
        "`.env` file in the working directory). The class is `core.settings.Settings`; this",
        "page is generated from it by `aqstream config-doc`, and a test fails when it is stale.",
        "",
        "The four server URLs decide what the embedded local stack starts: a server whose URL is",
        "set is used as it is, and nothing local starts for it.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        env = f"`AQSTREAM_{name.upper()}`"
        lines.append(f"| {env} | {_default(field.default)} | {field.description or ''} |")
    return "\n".join(lines) + "\n"
