"""bench/run_all's table: each benchmark's summary lines, ratio and verdict computed once."""

from __future__ import annotations

from bench.summary import bound_line, ratio_line, render


def test_ratio_line_computes_ratio_and_verdict() -> None:
    met = ratio_line("relay", "events/s", 700.0, 1000.0, "raw", "msg/s", 0.7)
    missed = ratio_line("relay", "events/s", 690.0, 1000.0, "raw", "msg/s", 0.7)
    assert met.asdict()["ratio"] == 0.7 and met.met
    assert missed.asdict()["ratio"] == 0.69 and not missed.met
    assert ratio_line("x", "y", 1.0, 0.0, "raw", "u", 0.5).ratio is None


def test_bound_line_below_and_above() -> None:
    assert bound_line("a", "p95", 99.0, "ms", 100.0).met
    assert not bound_line("a", "p95", 100.0, "ms", 100.0).met
    assert bound_line("a", "rows/s", 5.0, "rows/s", 5.0, below=False).met


def test_render_one_row_per_line() -> None:
    lines = [
        ratio_line("flash sale", "reg/s", 112.0, 181.0, "raw SQL", "reg/s", 0.5).asdict(),
        bound_line("flash sale", "p95", 936.0, "ms", 250.0).asdict(),
    ]
    table = render(lines).splitlines()
    rows = [r for r in table if r.startswith("| flash sale")]
    assert len(rows) == 2
    assert "0.62" in rows[0] and "yes" in rows[0] and "181.0 (raw SQL)" in rows[0]
    assert rows[1].rstrip(" |").endswith("NO")
