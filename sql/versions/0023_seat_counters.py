"""Seat counters out of the referenced rows, sharded (sql/ddl/0023_seat_counters.sql).

Why: ``registrations``, ``reservations`` and ``waitlist_entries`` reference ``ticket_types`` and
``events`` by foreign key, so every insert takes FOR KEY SHARE on the very rows whose ``sold``
counter a claim then updates: on a flash sale the hot row carried a lock queue, MultiXacts and
buffer contention (docs/benchmarks.md, issue 24: raw SQL 407 registrations/s with the counter in
an unreferenced table against 170, 524-671/s with the seats over 16 rows).

Design:

- ``seat_counters`` (tenant_id, event_id, counter_id, shard, capacity, sold): one counter per
  ticket type (counter_id = the ticket type's id) and one per event-wide capacity (counter_id =
  the event's id; no rows while the event has no capacity), each in **16 shards** (a constant:
  ``seat_share()`` and the CHECK on ``shard``; changing it means a migration that respreads).
  Room is spread ``capacity / 16`` per shard, the first ``capacity % 16`` one more, so a
  capacity of 1 lives in shard 0 alone. No foreign key points at the table; its own keys (to
  events and organizations) are checked only when a row is inserted (a counter opened), never
  when ``sold`` changes, so a claim touches neither ``ticket_types`` nor ``events`` rows.
  Row level security as every tenant table: the tenant's rows, plus reading those of events the
  caller sees (as ``ticket_types_visible``); the application role may only read it, every write
  goes through SECURITY DEFINER functions and triggers.
- Claim (``seat_take``): a random shard with room that nobody holds (FOR UPDATE SKIP LOCKED);
  else each shard with room, in order from there, waiting for it; else every shard locked in
  shard order and room moved into the roomiest shard when the quantity fits the total but no
  single shard. ``sold_out`` / ``event_full`` only when the total room, counted with all shards
  locked, cannot fit the quantity. Lock order: at most one shard of a counter, or all of them in
  shard order; the ticket type's before the event's. ``claim_seats`` writes the shards that gave
  the seats on the registration or hold (``seat_shard``, ``event_seat_shard``; a hold's carry
  over to its registration), and releases (cancel, refund, hold expiry or cancel, a lapsed
  waitlist offer) give them back there. Seats taken before this migration, or before an event
  had a capacity, have no shard: they come back from the shards holding seats, in shard order.
- Capacity edits: ``lock_seats()`` counts what is taken with the shards locked (the service
  refuses to go below it), then triggers on ``ticket_types`` / ``events`` spread the new room
  again (each shard keeps the seats it gave). An event capacity set for the first time starts
  from its ticket types' seats, counted with their shards locked; removed, its counter goes.
- ``sold`` stays readable: the columns are dropped and ``sold(ticket_types)`` /
  ``sold(events)`` sum the shards, so ``t.sold`` / ``e.sold`` in SQL (PostgreSQL's functional
  notation) and ``TicketType.sold`` / ``Event.sold`` in the models (a column_property with the
  same sum) read as before. A column maintained on the side would put the write back on the
  referenced row, which is what this migration removes; a view would need every writer and RLS
  policy of ``ticket_types`` and ``events`` moved.
"""

from collections.abc import Sequence

from aqstream.migrations import run_sql_file

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0023_seat_counters.sql")


def downgrade() -> None:
    run_sql_file("0023_seat_counters_downgrade.sql")
