"""Templates, languages, values as shown, and quiet hours: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from domain.notification import catalog
from domain.notification.preferences import QuietHours


def _sample(template: str) -> dict:
    return {name: f"<{name}> & co" for name in catalog.TEMPLATES[template].variables}


@pytest.mark.parametrize("template", sorted(catalog.TEMPLATES))
def test_every_template_renders_in_both_languages_and_they_differ(template: str) -> None:
    en = catalog.render(template, "en", _sample(template))
    ru = catalog.render(template, "ru", _sample(template))
    for rendered in (en, ru):
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.text.strip()
        assert rendered.html.startswith("<!DOCTYPE html>")
    assert en.text != ru.text
    assert 'lang="ru"' in ru.html and 'lang="en"' in en.html
    assert any("а" <= ch <= "я" for ch in ru.text.lower()), ru.text


@pytest.mark.parametrize("template", sorted(catalog.TEMPLATES))
def test_html_is_escaped_and_text_is_verbatim(template: str) -> None:
    rendered = catalog.render(template, "en", _sample(template))
    assert "<name> &amp; co" not in rendered.text  # plain text is not escaped...
    assert "&lt;" in rendered.html  # ...the HTML part is
    for variable in catalog.TEMPLATES[template].variables:
        assert f"<{variable}>" not in rendered.html, variable


def test_the_catalog_lists_both_languages_of_every_template() -> None:
    listed = {t["template"]: t for t in catalog.available()}
    assert set(listed) == set(catalog.TEMPLATES)
    for entry in listed.values():
        assert entry["languages"] == ["en", "ru"]
        assert entry["variables"] and entry["event_types"]
    handled = {e for t in listed.values() for e in t["event_types"]}
    assert {
        "user.registered",
        "registration.created",
        "registration.confirmed",
        "payment.completed",
        "reservation.expired",
        "waitlist.offered",
        "event.cancelled",
        "event.reminder",
    } <= handled


def test_a_variable_missing_or_unexpected_fails_loudly() -> None:
    variables = _sample("welcome")
    with pytest.raises(ValueError, match="missing"):
        catalog.render("welcome", "en", {})
    with pytest.raises(ValueError, match="unexpected"):
        catalog.render("welcome", "en", {**variables, "surprise": 1})


@pytest.mark.parametrize(
    ("locale", "language"),
    [("ru", "ru"), ("ru-RU", "ru"), ("en", "en"), ("de", "en"), ("", "en"), (None, "en")],
)
def test_language_of_a_locale(locale: str | None, language: str) -> None:
    assert catalog.language_of(locale) == language


def test_money_and_moments() -> None:
    assert catalog.money(2500, "EUR") == "25.00 EUR"
    assert catalog.money(5, "USD") == "0.05 USD"
    assert catalog.money(1500, "JPY") == "1500 JPY"
    moment = datetime(2027, 4, 1, 7, 0, tzinfo=UTC)
    assert catalog.when(moment, "Europe/Berlin") == "2027-04-01 09:00 (Europe/Berlin)"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_quiet_hours_within_a_day() -> None:
    quiet = QuietHours(time(13, 0), time(15, 0), "UTC")
    assert quiet.until(_utc("2027-01-10T12:59")) is None
    assert quiet.until(_utc("2027-01-10T13:00")) == _utc("2027-01-10T15:00")
    assert quiet.until(_utc("2027-01-10T14:30")) == _utc("2027-01-10T15:00")
    assert quiet.until(_utc("2027-01-10T15:00")) is None


def test_quiet_hours_over_midnight_in_the_users_zone() -> None:
    quiet = QuietHours(time(22, 0), time(8, 0), "Europe/Moscow")  # UTC+3
    assert quiet.until(_utc("2027-01-10T18:59")) is None  # 21:59 in Moscow
    # 23:30 in Moscow: the window ends at 08:00 the next morning there, 05:00 UTC.
    assert quiet.until(_utc("2027-01-10T20:30")) == _utc("2027-01-11T05:00")
    # 03:00 in Moscow: ends the same morning.
    assert quiet.until(_utc("2027-01-11T00:00")) == _utc("2027-01-11T05:00")
    assert quiet.until(_utc("2027-01-11T05:00")) is None


def test_quiet_hours_end_at_the_local_time_across_a_dst_change() -> None:
    quiet = QuietHours(time(22, 0), time(7, 0), "Europe/Berlin")
    # The night clocks go forward (2027-03-28): 07:00 CEST is 05:00 UTC, not 06:00.
    assert quiet.until(_utc("2027-03-27T23:00")) == _utc("2027-03-28T05:00")
