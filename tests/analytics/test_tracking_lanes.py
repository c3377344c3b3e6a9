"""How the tracking service deals its fetches to its lanes (no I/O): every record once, a
partition's records in one lane and in order, batches no larger than the batch size, a full lane
holds the fetch back, and a failed lane fails it."""

from __future__ import annotations

import asyncio
from collections import namedtuple

import pytest

from streams.tracking import _deal, _Lane

TP = namedtuple("TP", "topic partition")
Msg = namedtuple("Msg", "partition offset")


def _fetch(sizes: dict[int, int], start: int = 0) -> dict[TP, list[Msg]]:
    return {TP("t", p): [Msg(p, start + o) for o in range(n)] for p, n in sizes.items() if n}


async def _drain(lane: _Lane, size: int) -> list[list[Msg]]:
    batches = []
    while lane.waiting:
        batches.append(await lane.take(size))
    return batches


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
def test_fetches_are_dealt_to_lanes_by_partition(sizes, lanes, size) -> None:
    async def scenario() -> dict[int, list[list[Msg]]]:
        dealt = [_Lane() for _ in range(lanes)]
        _deal(_fetch(sizes), dealt)
        _deal(_fetch(sizes, start=1000), dealt)  # a second fetch: after the first
        return {i: await _drain(lane, size) for i, lane in enumerate(dealt)}

    taken = asyncio.run(scenario())
    assert all(0 < len(batch) <= size for batches in taken.values() for batch in batches)
    assert all(m.partition % lanes == i for i, bs in taken.items() for b in bs for m in b)
    seen = [m for batches in taken.values() for batch in batches for m in batch]
    fetched = [*_fetch(sizes).values(), *_fetch(sizes, start=1000).values()]
    assert sorted(seen) == sorted(m for ms in fetched for m in ms)  # each once
    for p, n in sizes.items():  # in order: a lane stores its batches in turn
        expected = [*range(n), *range(1000, 1000 + n)]
        assert [m.offset for m in seen if m.partition == p] == expected


def test_a_lane_takes_what_came_while_it_was_busy_up_to_the_batch_size() -> None:
    async def scenario() -> list[int]:
        lane = _Lane()
        taker = asyncio.ensure_future(lane.take(600))
        await asyncio.sleep(0)
        assert not taker.done()  # nothing waits: the lane waits for records
        lane.put([Msg(0, 0)])
        first = await taker
        lane.put([Msg(0, o) for o in range(1, 500)])
        lane.put([Msg(0, o) for o in range(500, 1300)])
        return [len(first), *(len(b) for b in await _drain(lane, 600))]

    assert asyncio.run(scenario()) == [1, 600, 600, 99]


def test_a_full_lane_holds_the_fetch_back_and_a_failed_lane_fails_it() -> None:
    async def scenario() -> None:
        lane, busy = _Lane(), asyncio.get_running_loop().create_future()
        lane.put([Msg(0, o) for o in range(10)])
        room = asyncio.ensure_future(lane.room(10, busy))
        await asyncio.sleep(0.01)
        assert not room.done()  # ten wait: the fetch waits
        await lane.take(4)
        await asyncio.wait_for(room, 1)  # six wait: it goes on
        lane.put([Msg(0, o) for o in range(10, 14)])
        room = asyncio.ensure_future(lane.room(10, busy))
        await asyncio.sleep(0.01)
        busy.set_exception(RuntimeError("dead letter not sent"))
        with pytest.raises(RuntimeError, match="dead letter not sent"):
            await asyncio.wait_for(room, 1)

    asyncio.run(scenario())
