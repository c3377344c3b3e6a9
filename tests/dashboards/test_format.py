"""How money, numbers, rates, changes and times read on the dashboards (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards import format as fmt

G, N, M = fmt.GROUP, fmt.NBSP, fmt.MINUS


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (123450, "EUR", f"1{G}234,50{N}€"),
        (123450, "RUB", f"1{G}234,50{N}₽"),
        (5, "EUR", f"0,05{N}€"),
        (0, "USD", f"0,00{N}$"),
        (100000000, "EUR", f"1{G}000{G}000,00{N}€"),
        (1234, "JPY", f"1{G}234{N}¥"),  # exponent 0: no decimals
        (1234567, "KWD", f"1{G}234,567{N}KWD"),  # exponent 3
        (-4900, "EUR", f"{M}49,00{N}€"),
        (999, "CHF", f"9,99{N}CHF"),
        (2500, "SEK", f"25,00{N}SEK"),  # no symbol known: the ISO code
        (2500, "eur", f"25,00{N}€"),
    ],
)
def test_money_uses_the_currency_exponent(minor: int, currency: str, text: str) -> None:
    assert fmt.money(minor, currency) == text


def test_exponents_follow_iso_4217() -> None:
    assert [fmt.exponent(c) for c in ("EUR", "JPY", "KRW", "BHD", "CLF", "XYZ")] == [
        2,
        0,
        0,
        3,
        4,
        2,
    ]


def test_money_list_keeps_currencies_apart_and_hides_zeros() -> None:
    assert fmt.money_list([(300000, "RUB"), (12000, "EUR"), (0, "USD")]) == (
        f"120,00{N}€ · 3{G}000,00{N}₽"
    )
    assert fmt.money_list([]) == "0"
    assert fmt.money_list([(0, "EUR")]) == "0"
    assert fmt.money(None, "EUR") == "–"


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [(0, 0, "0"), (999, 0, "999"), (1000, 0, f"1{G}000"), (1234567, 0, f"1{G}234{G}567"),
     (-1500, 0, f"{M}1{G}500"), (12.345, 1, "12,3"), (None, 0, "–")],
)  # fmt: skip
def test_number_groups_digits(value, decimals: int, text: str) -> None:
    assert fmt.number(value, decimals) == text


def test_percent_of_a_rate() -> None:
    assert fmt.percent(0.25) == f"25,0{N}%"
    assert fmt.percent(1) == f"100,0{N}%"
    assert fmt.percent(0.12345, 2) == f"12,35{N}%"
    assert fmt.percent(None) == "–"


@pytest.mark.parametrize(
    ("current", "previous", "arrow", "text", "direction"),
    [
        (120, 100, "▲", f"20,0{N}%", "up"),
        (75, 100, "▼", f"25,0{N}%", "down"),
        (100, 100, "▬", f"0{N}%", "flat"),
        (0, 0, "▬", f"0{N}%", "flat"),
        (5, 0, "▲", "new", "new"),
        (0, 10, "▼", f"100,0{N}%", "down"),
        (None, None, "▬", f"0{N}%", "flat"),
        (0.3, 0.2, "▲", f"50,0{N}%", "up"),
    ],
)
def test_delta_against_previous_period(current, previous, arrow, text, direction) -> None:
    d = fmt.delta(current, previous)
    assert (d.arrow, d.text, d.direction) == (arrow, text, direction)


def test_times_show_in_the_event_zone() -> None:
    instant = "2027-04-01T07:00:00Z"
    assert fmt.when(instant, "Europe/Berlin") == "1 Apr 2027, 09:00 (Europe/Berlin)"
    assert fmt.when(instant, "Asia/Tokyo", with_zone=False) == "1 Apr 2027, 16:00"
    assert fmt.when(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "UTC") == "31 Dec 2026, 23:30 (UTC)"
    # the day after a DST change in Berlin (26 Oct 2025): UTC+1 again
    assert fmt.when("2025-10-27T08:00:00+00:00", "Europe/Berlin", with_zone=False) == (
        "27 Oct 2025, 09:00"
    )
    assert fmt.when(None, "UTC") == "–"


def test_sold_of_capacity() -> None:
    assert fmt.sold_of(42, 100) == "42 / 100"
    assert fmt.sold_of(1200, 5000) == f"1{G}200 / 5{G}000"
    assert fmt.sold_of(None, 10) == "0 / 10"
    assert fmt.sold_of(7, None) == "7"
