"""How numbers, money, rates, changes and times read on the dashboards.

One convention everywhere: digits grouped by a narrow no-break space, a decimal comma, the
currency symbol after the amount (``1 234,50 €``). Money arrives in minor units with its ISO 4217
code; the code's exponent (ISO 4217 "minor unit") says where the decimal comma goes. Babel would
know every locale; the dashboards need one, and this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

GROUP = "\u202f"  # narrow no-break space between digit groups
NBSP = "\u00a0"  # between a number and its unit
MINUS = "\u2212"

# ISO 4217 currencies whose minor unit is not 2 (the rest have cents).
_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}  # fmt: skip
_SYMBOLS = {
    "EUR": "€", "RUB": "₽", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹",
    "KZT": "₸", "UAH": "₴", "TRY": "₺", "ILS": "₪", "KRW": "₩", "PLN": "zł", "CHF": "CHF",
}  # fmt: skip


def exponent(currency: str) -> int:
    """Digits after the decimal comma of ``currency`` (ISO 4217)."""
    return _EXPONENTS.get(currency.upper(), 2)


def symbol(currency: str) -> str:
    return _SYMBOLS.get(currency.upper(), currency.upper())


def _group(digits: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return GROUP.join(parts)


def number(value: int | float | None, decimals: int = 0) -> str:
    """``1234`` → ``1 234``; ``None`` (unknown) → ``–``."""
    if value is None:
        return "–"
    sign = MINUS if value < 0 else ""
    text = f"{abs(value):.{decimals}f}"
    whole, _, fraction = text.partition(".")
    return sign + _group(whole) + ("," + fraction if fraction else "")


def money(minor: int | None, currency: str) -> str:
    """Minor units to ``1 234,50 €`` (``¥1 234`` has no decimals: JPY's exponent is 0)."""
    if minor is None:
        return "–"
    digits = exponent(currency)
    sign = MINUS if minor < 0 else ""
    whole, fraction = divmod(abs(int(minor)), 10**digits)
    text = _group(str(whole)) + (f",{fraction:0{digits}d}" if digits else "")
    return f"{sign}{text}{NBSP}{symbol(currency)}"


def money_list(amounts: list[tuple[int, str]]) -> str:
    """Several currencies side by side (``120,00 € · 3 000,00 ₽``); nothing is ``0``."""
    shown = [money(a, c) for a, c in sorted(amounts, key=lambda x: x[1]) if a]
    return " · ".join(shown) if shown else "0"


def percent(rate: float | None, decimals: int = 1) -> str:
    """A rate between 0 and 1 as ``25,0 %``; no rate (nothing to divide by) → ``–``."""
    if rate is None:
        return "–"
    return f"{number(rate * 100, decimals)}{NBSP}%"


@dataclass(frozen=True)
class Delta:
    """A change against the previous period, ready to show: arrow, text and its direction."""

    arrow: str
    text: str
    direction: str  # up | down | flat | new


def delta(current: float | None, previous: float | None) -> Delta:
    """Relative change of ``current`` against ``previous`` (▲ 12,5 %, ▼ 3,0 %, ▬ 0 %, new)."""
    current, previous = current or 0, previous or 0
    if previous == 0:
        if current == 0:
            return Delta("▬", "0" + NBSP + "%", "flat")
        return Delta("▲", "new", "new")
    change = (current - previous) / abs(previous)
    if abs(change) < 0.0005:
        return Delta("▬", "0" + NBSP + "%", "flat")
    return Delta("▲" if change > 0 else "▼", percent(abs(change)), "up" if change > 0 else "down")


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local_time(value: str | datetime, timezone: str) -> datetime:
    """An aware instant in the event's time zone."""
    return parse_time(value).astimezone(ZoneInfo(timezone))


def when(value: str | datetime | None, timezone: str, *, with_zone: bool = True) -> str:
    """``1 Apr 2027, 09:00 (Europe/Berlin)``: an instant as the event's visitors read it."""
    if value is None:
        return "–"
    moment = local_time(value, timezone)
    text = f"{moment.day} {moment:%b %Y, %H:%M}"
    return f"{text} ({timezone})" if with_zone else text


def sold_of(sold: int | None, capacity: int | None) -> str:
    """``42 / 100``; an event without a cap shows only what is sold."""
    if capacity is None:
        return number(sold or 0)
    return f"{number(sold or 0)} / {number(capacity)}"
