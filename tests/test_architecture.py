"""The layers of docs/architecture.md hold: no upward import between them, and no import cycle.

The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked by import-linter,
the same check ``lint-imports`` runs by hand; on top of them, every module-level cycle is refused
(grimp sees imports inside functions too, so a cycle "patched" with a function-local import still
counts). The last two tests show the check failing on a tree that breaks each rule."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import grimp

from core.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "pyproject.toml"


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's own command line, on ``config`` (no cache: the tree is read afresh)."""
    command = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(command), "--config", str(config), "--no-cache", "--show-timings"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def module_cycles(packages: list[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return found


def root_packages() -> list[str]:
    return tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["root_packages"]


def test_the_layers_hold() -> None:
    result = lint_imports(CONFIG, PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout[-2000:]


def test_no_module_takes_part_in_an_import_cycle() -> None:
    assert module_cycles(root_packages()) == []


def test_the_ground_floor_imports_nothing_of_ours() -> None:
    graph = grimp.build_graph(*root_packages(), cache_dir=None)
    ours = set(root_packages()) - {"core"}
    upward = {
        (m, d)
        for m in graph.find_descendants("core") | {"core"}
        for d in graph.find_modules_directly_imported_by(m)
        if d.split(".")[0] in ours
    }
    assert upward == set()


# --- the check fails where it should ----------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return tmp_path


def _config_like_ours(tmp_path: Path, layers: list[str]) -> Path:
    """The project's contracts, with the toy tree's packages in place of ours."""
    ours = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]
    kinds = [c["type"] for c in ours["contracts"]]
    assert kinds == ["layers", "acyclic_siblings"]
    config = tmp_path / "contracts.toml"
    quoted = ", ".join(f'"{p}"' for p in layers)
    config.write_text(
        textwrap.dedent(f"""\
        [tool.importlinter]
        root_packages = [{quoted}]

        [[tool.importlinter.contracts]]
        name = "layers"
        type = "layers"
        layers = [{quoted}]

        [[tool.importlinter.contracts]]
        name = "acyclic"
        type = "acyclic_siblings"
        ancestors = [{quoted}]
        depth = 10
        """)
    )
    return config


def test_the_check_fails_on_an_upward_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "toyroof/__init__.py": "",
            "toyroof/cli.py": "import toyground.settings\n",
            "toyground/__init__.py": "",
            "toyground/settings.py": "def load():\n    from toyroof import cli  # upward\n",
        },
    )
    result = lint_imports(_config_like_ours(root, ["toyroof", "toyground"]), root)
    assert result.returncode == 1, result.stdout
    assert "toyground.settings -> toyroof.cli" in result.stdout


def test_the_check_fails_on_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "toydomain/__init__.py": "",
            "toydomain/payment/__init__.py": "",
            "toydomain/payment/service.py": "from toydomain.payment import saga\n",
            "toydomain/payment/saga.py": "def step():\n    from toydomain.payment import service\n",
        },
    )
    result = lint_imports(_config_like_ours(root, ["toydomain"]), root)
    assert result.returncode == 1, result.stdout
    assert "No cycles are allowed in toydomain.payment" in result.stdout
    sys.path.insert(0, str(root))
    try:
        cycles = module_cycles(["toydomain"])
    finally:
        sys.path.remove(str(root))
    assert cycles == [["toydomain.payment.saga", "toydomain.payment.service"]]
