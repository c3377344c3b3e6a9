"""Lookups in the app's own OpenAPI document: which operations a URL path has, and their
declared parameters. The document is the contract clients get, so behaviour follows it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class PathEntry:
    pattern: re.Pattern[str]
    template: str
    operations: dict[str, dict[str, Any]]

    @property
    def literal(self) -> bool:
        return "{" not in self.template


def _index(app: FastAPI) -> list[PathEntry]:
    index = getattr(app.state, "openapi_index", None)
    if index is None:
        index = []
        for template, item in app.openapi()["paths"].items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            ops = {m: op for m, op in item.items() if isinstance(op, dict)}
            index.append(PathEntry(re.compile(f"^{regex}$"), template, ops))
        app.state.openapi_index = index
    return index


def entries_for(app: FastAPI, path: str) -> list[PathEntry]:
    """Documented paths matching ``path``; a literal path (/groups/mine) shadows templates
    (/groups/{group_id}) that also match it, as routing does."""
    found = [e for e in _index(app) if e.pattern.match(path)]
    literal = [e for e in found if e.literal]
    return literal or found


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for entry in entries_for(app, path):
        methods |= {m.upper() for m in entry.operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def operation(app: FastAPI, method: str, path: str) -> dict[str, Any] | None:
    for entry in entries_for(app, path):
        if method.lower() in entry.operations:
            return entry.operations[method.lower()]
    return None
