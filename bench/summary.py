"""One line per measured figure, the same for every benchmark, so ``bench/run_all`` can print
them all in one table: what was measured, the figure, its baseline, the ratio and the target.

A benchmark puts ``"summary": [line.asdict(), ...]`` into the JSON it writes with ``--json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    benchmark: str  # e.g. "flash sale"
    measure: str  # e.g. "registrations/s, API vs raw SQL"
    figure: float
    unit: str  # of figure and baseline
    target: str  # e.g. ">= 0.5 of baseline", "< 250 ms"
    met: bool
    baseline: float | None = None  # the side-by-side run; None for absolute targets
    baseline_name: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.figure / self.baseline

    def asdict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": None if self.ratio is None else round(self.ratio, 3)}


def ratio_line(
    benchmark: str,
    measure: str,
    figure: float,
    baseline: float,
    baseline_name: str,
    unit: str,
    target_ratio: float,
) -> Line:
    ratio = figure / baseline if baseline else 0.0
    return Line(
        benchmark=benchmark,
        measure=measure,
        figure=figure,
        unit=unit,
        baseline=baseline,
        baseline_name=baseline_name,
        target=f"ratio >= {target_ratio:g}",
        met=ratio >= target_ratio,
    )


def bound_line(
    benchmark: str, measure: str, figure: float, unit: str, limit: float, *, below: bool = True
) -> Line:
    met = figure < limit if below else figure >= limit
    return Line(
        benchmark=benchmark,
        measure=measure,
        figure=figure,
        unit=unit,
        target=f"{'<' if below else '>='} {limit:g} {unit}",
        met=met,
    )


def render(lines: list[dict[str, Any]], title: str = "Benchmarks") -> str:
    """A Markdown table of summary lines (also what the terminal shows)."""
    head = ["benchmark", "measure", "figure", "baseline", "ratio", "target", "met"]
    rows = []
    for x in lines:
        base = "" if x.get("baseline") is None else f"{x['baseline']:,.1f} ({x['baseline_name']})"
        ratio = "" if x.get("ratio") is None else f"{x['ratio']:.2f}"
        rows.append(
            [
                x["benchmark"],
                x["measure"],
                f"{x['figure']:,.1f} {x['unit']}",
                base,
                ratio,
                x["target"],
                "yes" if x["met"] else "NO",
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    out = [f"### {title}", "", fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(out)
