"""How numbers, money, rates, changes and times read on the dashboards, in the reader's locale.

One locale per request (``activate``, chosen by ``choose``: the signed-in user's locale as
``GET /users/me`` gives it, else the browser's ``Accept-Language``, else English), and only
locales whose UI text the dashboards have: numbers never read in one language around text in
another. Money arrives in minor units with its ISO 4217 code; the code's exponent (ISO 4217
"minor unit") says how many decimals it shows. Babel would know every locale; the dashboards need
the few they speak, and this table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

NBSP = "\u00a0"  # between a number and its unit, where the locale puts a space
MINUS = "\u2212"
NONE = "–"  # a value that is unknown or has nothing to divide by


@dataclass(frozen=True)
class Locale:
    """How one language writes numbers: ``1,234.50`` or ``1 234,50``, ``€1.00`` or ``1,00 €``."""

    tag: str
    decimal: str
    group: str
    money: str  # "{amount}" and "{symbol}", e.g. "{symbol}{amount}" or "{amount}\u00a0{symbol}"
    percent: str  # "{number}%" or "{number}\u00a0%"

    @property
    def plotly_separators(self) -> str:
        """Plotly's ``separators``: the decimal mark, then the group separator."""
        return self.decimal + self.group


# The languages the dashboards' text is written in (English only, for now): adding one means
# adding its Locale here and its text together.
LOCALES = {
    "en": Locale("en", decimal=".", group=",", money="{symbol}{amount}", percent="{number}%"),
}
DEFAULT = LOCALES["en"]
_current: ContextVar[Locale] = ContextVar("dashboards_locale", default=DEFAULT)


def _language(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-")[0].lower()


def accepted(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first (``q=0`` refused)."""
    weighted = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, i, tag))
    return [tag for _, _, tag in sorted(weighted)]


def choose(user_locale: str | None, accept_language: str | None) -> Locale:
    """The user's own locale, else the browser's first language the dashboards speak, else
    English: the first candidate with a Locale wins."""
    for tag in [user_locale or "", *accepted(accept_language)]:
        if (lang := _language(tag)) in LOCALES:
            return LOCALES[lang]
    return DEFAULT


def activate(locale: Locale) -> None:
    """The locale of what this request renders (set before every request is handled)."""
    _current.set(locale)


def current() -> Locale:
    return _current.get()


@contextmanager
def using(locale: Locale) -> Iterator[Locale]:
    """``locale`` for the block only (tests, and renders outside a request)."""
    token = _current.set(locale)
    try:
        yield locale
    finally:
        _current.reset(token)


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


def _group(digits: str, locale: Locale) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return locale.group.join(parts)


def number(value: int | float | None, decimals: int = 0) -> str:
    """``1234`` → ``1,234`` (in English); ``None`` (unknown) → ``–``."""
    if value is None:
        return NONE
    locale = current()
    sign = MINUS if value < 0 else ""
    text = f"{abs(value):.{decimals}f}"
    whole, _, fraction = text.partition(".")
    return sign + _group(whole, locale) + (locale.decimal + fraction if fraction else "")


def size(n_bytes: int | None) -> str:
    """A file's size in the largest unit under 1,000 of it: ``820 B``, ``29.3 KB``, ``1.2 MB``
    (decimal units, one decimal above bytes)."""
    if n_bytes is None:
        return NONE
    value, unit = float(n_bytes), "B"
    for bigger in ("KB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{number(value, 0 if unit == 'B' else 1)}{NBSP}{unit}"


def money(minor: int | None, currency: str) -> str:
    """Minor units to ``€1,234.50`` (``¥1,234`` has no decimals: JPY's exponent is 0); a
    currency without a symbol shows its code (``SEK 25.00``)."""
    if minor is None:
        return NONE
    locale = current()
    digits = exponent(currency)
    whole, fraction = divmod(abs(int(minor)), 10**digits)
    amount = _group(str(whole), locale) + (
        f"{locale.decimal}{fraction:0{digits}d}" if digits else ""
    )
    mark = symbol(currency)
    template = locale.money
    if len(mark) > 1 and "{symbol}{amount}" in template:  # a code needs a space before digits
        template = template.replace("{symbol}{amount}", "{symbol}" + NBSP + "{amount}")
    return (MINUS if minor < 0 else "") + template.format(amount=amount, symbol=mark)


def money_list(amounts: list[tuple[int, str]]) -> str:
    """Several currencies side by side (``€120.00 · ₽3,000.00``); nothing is ``0``."""
    shown = [money(a, c) for a, c in sorted(amounts, key=lambda x: x[1]) if a]
    return " · ".join(shown) if shown else "0"


def percent(rate: float | None, decimals: int = 1) -> str:
    """A rate between 0 and 1 as ``25.0%``; no rate (nothing to divide by) → ``–``."""
    if rate is None:
        return NONE
    return current().percent.format(number=number(rate * 100, decimals))


@dataclass(frozen=True)
class Delta:
    """A change against the previous period, ready to show: arrow, text and its direction."""

    arrow: str
    text: str
    direction: str  # up | down | flat | new


def delta(now: float | None, previous: float | None) -> Delta:
    """Relative change of ``now`` against ``previous`` (▲ 12.5%, ▼ 3.0%, ▬ 0%, new)."""
    now, previous = now or 0, previous or 0
    if previous == 0:
        if now == 0:
            return Delta("▬", percent(0, 0), "flat")
        return Delta("▲", "new", "new")
    change = (now - previous) / abs(previous)
    if abs(change) < 0.0005:
        return Delta("▬", percent(0, 0), "flat")
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
        return NONE
    moment = local_time(value, timezone)
    text = f"{moment.day} {moment:%b %Y, %H:%M}"
    return f"{text} ({timezone})" if with_zone else text


def sold_of(sold: int | None, capacity: int | None) -> str:
    """``42 / 100``; an event without a cap shows only what is sold."""
    if capacity is None:
        return number(sold or 0)
    return f"{number(sold or 0)} / {number(capacity)}"
