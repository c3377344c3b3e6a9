"""How the tracking service cuts a fetch into parts stored at the same time (no I/O): every record
once, a partition's records together and in order, parts of about the same size, transactions
no larger than the batch size."""

from __future__ import annotations

from collections import namedtuple

import pytest

from streams.analytics import _split

TP = namedtuple("TP", "topic partition")
Msg = namedtuple("Msg", "partition offset")


def _fetch(sizes: dict[int, int]) -> dict[TP, list[Msg]]:
    return {TP("t", p): [Msg(p, o) for o in range(n)] for p, n in sizes.items() if n}


@pytest.mark.parametrize(
    ("sizes", "parts", "size"),
    [
        ({0: 800, 1: 200, 2: 300, 3: 450}, 2, 5000),
        ({0: 800, 1: 200, 2: 300, 3: 450}, 2, 250),
        ({0: 10}, 2, 4),
        ({0: 5, 1: 5, 2: 5, 3: 5}, 3, 100),
        ({0: 7, 1: 9}, 1, 5),
        ({2: 3, 3: 1}, 8, 2),
    ],
)
def test_a_fetch_is_split_by_partition_into_balanced_parts(sizes, parts, size) -> None:
    split = _split(_fetch(sizes), parts, size)
    assert len(split) == min(parts, len([n for n in sizes.values() if n]))
    batches = [batch for part in split for batch in part]
    assert all(0 < len(batch) <= size for batch in batches)
    seen = [m for batch in batches for m in batch]
    assert sorted(seen) == sorted(m for ms in _fetch(sizes).values() for m in ms)  # each once
    for part in split:
        records = [m for batch in part for m in batch]
        for p in {m.partition for m in records}:
            offsets = [m.offset for m in records if m.partition == p]
            assert offsets == list(range(sizes[p]))  # all of it, in order, in this part only
    totals = sorted(sum(len(b) for b in part) for part in split)
    assert totals[-1] - totals[0] <= max(sizes.values())  # no better split moves a partition


def test_the_largest_partitions_go_first_each_to_the_shortest_part() -> None:
    split = _split(_fetch({0: 800, 1: 200, 2: 300, 3: 450}), 2, 5000)
    totals = sorted(sum(len(b) for b in part) for part in split)
    assert totals == [800, 950]  # 800 | 450, +300 (750 < 800), +200


def test_an_empty_fetch_has_no_parts() -> None:
    assert _split({}, 2, 100) == []
