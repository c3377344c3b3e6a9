"""Run every benchmark one after another and print one table: each figure, its baseline, the
ratio and the target (``python -m bench.run_all``; ``make bench-all``).

Each benchmark runs as its own process with ``--json``, on its own local stack, so one cannot
disturb the next; the table is built from the ``summary`` lines they write (bench/summary.py).
``--quick`` runs each with smaller sizes: the table then shows the shape, not the figures to
quote (docs/benchmarks.md has those, from full runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.summary import render

# module, the arguments of a full run, the arguments of a quick run
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "flash_sale": (
        [],
        ["--clients", "16", "--seats", "300", "--no-analysis", "--offered-rate", "0"],
    ),
    "relay": ([], ["--rows", "3000", "--aggregates", "600", "--rounds", "1", "--seconds", "5"]),
    "analytics": ([], ["--quick"]),
    "warehouse": ([], ["--facts", "1000000", "--rounds", "1", "--requests", "50"]),
    "export": ([], ["--rows", "200000"]),
}


def run(name: str, args: list[str], out: Path) -> tuple[int, float]:
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", f"bench.{name}", *args, "--json", str(out)])
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these (repeatable)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    lines: list[dict] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aqstream-bench-") as tmp:
        for name, (full, quick) in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            out = Path(tmp) / f"{name}.json"
            print(f"\n=== bench.{name} {'(quick)' if args.quick else ''}", flush=True)
            code, seconds = run(name, quick if args.quick else full, out)
            if code != 0 or not out.exists():
                failed.append(f"{name} (exit {code})")
                continue
            summary = json.loads(out.read_text()).get("summary", [])
            if not summary:
                failed.append(f"{name} (no summary lines)")
            lines += summary
            print(f"=== bench.{name}: {seconds:.0f} s", flush=True)
    table = render(lines, "Every benchmark" + (" (quick sizes)" if args.quick else ""))
    print()
    print(table)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
