"""How money, numbers, rates, changes and times read on the dashboards (no servers), and which
locale they read in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards import format as fmt

N, M = fmt.NBSP, fmt.MINUS
# A decimal-comma locale the dashboards do not speak yet: the functions follow whichever is active.
COMMA = fmt.Locale("xx", decimal=",", group="\u202f", money="{amount}\u00a0{symbol}",
                   percent="{number}\u00a0%")  # fmt: skip


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (123450, "EUR", "€1,234.50"),
        (123450, "RUB", "₽1,234.50"),
        (5, "EUR", "€0.05"),
        (0, "USD", "$0.00"),
        (100000000, "EUR", "€1,000,000.00"),
        (1234, "JPY", "¥1,234"),  # exponent 0: no decimals
        (1234567, "KWD", f"KWD{N}1,234.567"),  # exponent 3
        (-4900, "EUR", f"{M}€49.00"),
        (999, "CHF", f"CHF{N}9.99"),
        (2500, "SEK", f"SEK{N}25.00"),  # no symbol known: the ISO code
        (2500, "eur", "€25.00"),
    ],
)
def test_money_uses_the_currency_exponent(minor: int, currency: str, text: str) -> None:
    assert fmt.money(minor, currency) == text


def test_another_locale_writes_the_same_amounts_its_way() -> None:
    with fmt.using(COMMA):
        assert fmt.money(123450, "EUR") == f"1\u202f234,50{N}€"
        assert fmt.number(12.345, 1) == "12,3" and fmt.percent(0.25) == f"25,0{N}%"
        assert fmt.current().plotly_separators == ",\u202f"
    assert fmt.current() is fmt.DEFAULT and fmt.percent(0.25) == "25.0%"


@pytest.mark.parametrize(
    ("user", "header", "chosen"),
    [
        ("en", "de-DE,de;q=0.9", "en"),  # the user's own locale first
        (None, "de-DE,en-GB;q=0.8", "en"),  # else the browser's first language spoken here
        ("ru", "fr;q=0.5, en-US;q=0.7", "en"),  # a locale without UI text is passed over
        (None, None, "en"),  # else English
        (None, "en;q=0, *", "en"),
    ],
)
def test_the_locale_is_the_users_else_the_browsers_else_english(user, header, chosen) -> None:
    assert fmt.choose(user, header).tag == chosen


def test_a_language_with_text_wins_over_one_without(monkeypatch) -> None:
    monkeypatch.setitem(fmt.LOCALES, "xx", COMMA)
    assert fmt.choose("xx-YY", "en") is COMMA
    assert fmt.choose("ru", "en;q=0.4, xx;q=0.9") is COMMA
    assert fmt.choose("en", "xx") is fmt.DEFAULT
    assert fmt.accepted("en;q=0.4, xx;q=0.9, de;q=0") == ["xx", "en"]


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
    assert fmt.money_list([(300000, "RUB"), (12000, "EUR"), (0, "USD")]) == ("€120.00 · ₽3,000.00")
    assert fmt.money_list([]) == "0"
    assert fmt.money_list([(0, "EUR")]) == "0"
    assert fmt.money(None, "EUR") == "–"


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [(0, 0, "0"), (999, 0, "999"), (1000, 0, "1,000"), (1234567, 0, "1,234,567"),
     (-1500, 0, f"{M}1,500"), (12.345, 1, "12.3"), (None, 0, "–")],
)  # fmt: skip
def test_number_groups_digits(value, decimals: int, text: str) -> None:
    assert fmt.number(value, decimals) == text


def test_percent_of_a_rate() -> None:
    assert fmt.percent(0.25) == "25.0%"
    assert fmt.percent(1) == "100.0%"
    assert fmt.percent(0.12345, 2) == "12.35%"
    assert fmt.percent(None) == "–"


@pytest.mark.parametrize(
    ("current", "previous", "arrow", "text", "direction"),
    [
        (120, 100, "▲", "20.0%", "up"),
        (75, 100, "▼", "25.0%", "down"),
        (100, 100, "▬", "0%", "flat"),
        (0, 0, "▬", "0%", "flat"),
        (5, 0, "▲", "new", "new"),
        (0, 10, "▼", "100.0%", "down"),
        (None, None, "▬", "0%", "flat"),
        (0.3, 0.2, "▲", "50.0%", "up"),
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
    assert fmt.sold_of(1200, 5000) == "1,200 / 5,000"
    assert fmt.sold_of(None, 10) == "0 / 10"
    assert fmt.sold_of(7, None) == "7"


def test_file_sizes_in_decimal_units() -> None:
    nbsp = fmt.NBSP
    assert [fmt.size(n) for n in (0, 999, 1000, 20_000, 29_312, 1_200_000, 3 * 10**9)] == [
        f"0{nbsp}B",
        f"999{nbsp}B",
        f"1.0{nbsp}KB",
        f"20.0{nbsp}KB",
        f"29.3{nbsp}KB",
        f"1.2{nbsp}MB",
        f"3.0{nbsp}GB",
    ]
    assert fmt.size(None) == fmt.NONE
