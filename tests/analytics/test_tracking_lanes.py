"""How the tracking service deals a fetch to its lanes (no I/O): every record once, a partition's
records in one lane and in order, batches no larger than the batch size."""

from __future__ import annotations

from collections import namedtuple

import pytest

from streams.analytics import _batches

TP = namedtuple("TP", "topic partition")
Msg = namedtuple("Msg", "partition offset")


def _fetch(sizes: dict[int, int]) -> dict[TP, list[Msg]]:
    return {TP("t", p): [Msg(p, o) for o in range(n)] for p, n in sizes.items() if n}


@pytest.mark.parametrize(
    ("sizes", "lanes", "size"),
    [
        ({0: 800, 1: 200, 2: 300, 3: 450}, 2, 5000),
        ({0: 800, 1: 200, 2: 300, 3: 450}, 2, 250),
        ({0: 10}, 2, 4),
        ({0: 5, 1: 5, 2: 5, 3: 5}, 3, 100),
        ({0: 7, 1: 9}, 1, 5),
        ({2: 3, 3: 1}, 8, 2),
    ],
)
def test_a_fetch_is_dealt_to_lanes_by_partition(sizes, lanes, size) -> None:
    dealt = _batches(_fetch(sizes), lanes, size)
    assert all(0 < len(batch) <= size for _, batch in dealt)
    assert all(m.partition % lanes == lane for lane, batch in dealt for m in batch)
    seen = [m for _, batch in dealt for m in batch]
    assert sorted(seen) == sorted(m for ms in _fetch(sizes).values() for m in ms)  # each once
    for p, n in sizes.items():  # in order: a lane stores its batches in turn
        assert [m.offset for m in seen if m.partition == p] == list(range(n))


def test_a_batch_fills_up_before_the_next_one_starts() -> None:
    dealt = _batches(_fetch({0: 800, 1: 200, 2: 300, 3: 450}), 2, 600)
    assert [(lane, len(batch)) for lane, batch in dealt] == [(0, 600), (0, 500), (1, 600), (1, 50)]


def test_an_empty_fetch_has_no_batches() -> None:
    assert _batches({}, 2, 100) == []
