"""Message templates: which domain events send which message, in which languages, with which
variables; and rendering them with Jinja2.

Each template is a folder under ``templates/`` with two files per language:

- ``<lang>.txt``: blocks ``subject`` and ``body``, plain text (not escaped). The body is the
  Telegram message (sent without a parse mode, so nothing in it is markup) and the text part of
  the e-mail.
- ``<lang>.html``: the e-mail's HTML part, extending ``base.html``; autoescaped, so a title such as
  ``<b>Gala</b>`` arrives as text, never as markup.

Variables are checked strictly: a template naming one the catalog does not pass fails to render.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    event_types: tuple[str, ...]
    description: str
    variables: tuple[str, ...]


ORGANIZER_MESSAGE_SOURCE = "notification.organizer_message"

TEMPLATES: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec("welcome", ("user.registered",), "Welcome after signing up", ("name",)),
        TemplateSpec(
            "ticket",
            ("registration.created", "registration.confirmed"),
            "The ticket with its QR code, once the registration is confirmed (sent once per "
            "registration and channel)",
            (
                "name",
                "event_title",
                "starts_at",
                "venue",
                "online_url",
                "ticket_type",
                "quantity",
                "registration_id",
            ),
        ),
        TemplateSpec(
            "ticket_resent",
            ("registration.ticket_resent",),
            "The ticket with its QR code again, at an organizer's request (POST "
            "/registrations/{id}/resend-ticket; once per request and channel)",
            (
                "name",
                "event_title",
                "starts_at",
                "venue",
                "online_url",
                "ticket_type",
                "quantity",
                "registration_id",
            ),
        ),
        TemplateSpec(
            "receipt",
            ("payment.completed",),
            "Receipt of a completed payment",
            ("name", "event_title", "amount", "purpose", "payment_id", "registration_id"),
        ),
        TemplateSpec(
            "reservation_expired",
            ("reservation.expired",),
            "A seat hold ran out",
            ("name", "event_title", "quantity"),
        ),
        TemplateSpec(
            "waitlist_offered",
            ("waitlist.offered",),
            "A seat is held for someone on the waitlist",
            ("name", "event_title", "ticket_type", "expires_at"),
        ),
        TemplateSpec(
            "event_cancelled",
            ("event.cancelled",),
            "The event is cancelled (to every registrant live when it was)",
            ("name", "event_title", "starts_at", "reason"),
        ),
        TemplateSpec(
            "event_reminder",
            ("event.reminder",),
            "Reminder before the event starts (to every confirmed registrant)",
            ("name", "event_title", "starts_at", "venue", "online_url"),
        ),
        TemplateSpec(
            "event_changed",
            ("event.updated",),
            "The event's time, venue or online link changed (to every live registrant; other "
            "edits send nothing)",
            ("name", "event_title", "changed", "starts_at", "venue", "online_url"),
        ),
        TemplateSpec(
            "group_event_published",
            ("event.published",),
            "A private event of the recipient's group is published (to the group's members)",
            ("name", "event_title", "organization", "group", "starts_at", "venue", "online_url"),
        ),
        TemplateSpec(
            "payment_failed",
            ("payment.failed",),
            "A payment did not go through (to the payer)",
            ("name", "event_title", "amount", "payment_id", "remainder_due"),
        ),
        TemplateSpec(
            "refund_completed",
            ("payment.refunded",),
            "A refund went back to the payer",
            ("name", "event_title", "amount", "refunded", "paid", "partial", "payment_id"),
        ),
        TemplateSpec(
            "registration_unpaid",
            ("registration.cancelled",),
            "A registration cancelled for non-payment: unpaid in time (payment_timeout) or its "
            "remainder unpaid by the deadline (remainder_unpaid)",
            ("name", "event_title", "starts_at", "reason", "amount_paid", "deposit_refunded"),
        ),
        TemplateSpec(
            "organization_invite",
            ("organization.member.invited", "group.member.invited"),
            "An invitation to join an organization, or one of its groups, with its code (drawn "
            "when sent; not sent once accepted, revoked or expired): by e-mail to the invited "
            "address, or by Telegram to the linked account with the invited username",
            (
                "name",
                "organization",
                "group",
                "inviter",
                "role",
                "expires_at",
                "token",
                "by_telegram",
            ),
        ),
        TemplateSpec(
            "organizer_message",
            (ORGANIZER_MESSAGE_SOURCE,),
            "An organizer's message to the participants of an event (POST /notifications/send)",
            ("name", "event_title", "organization", "subject", "text"),
        ),
        TemplateSpec(
            "password_reset",
            ("user.password_reset_requested",),
            "A link to reset the password (POST /auth/password-reset), by e-mail whatever the "
            "chosen channel",
            ("name", "reset_url", "valid_minutes"),
        ),
        TemplateSpec(
            "email_verification",
            ("user.email_verification_requested",),
            "A link to confirm the account's e-mail address (sign-up, a new address, POST "
            "/users/me/email-verification), by e-mail to that address whatever the chosen channel; "
            "a paid registration needs it",
            ("name", "email", "verify_url", "expires_at"),
        ),
    )
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def language_of(locale: str | None) -> str:
    """The template language for a user's locale (``ru``, ``ru-RU`` -> ``ru``); else English."""
    language = (locale or "").split("-")[0].split("_")[0].lower()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@functools.cache
def environment() -> Environment:
    """Built on first use (not at import) and shared: templates compile once per process."""
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _block(template, name: str, context: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(context))).strip()


def render(template: str, language: str, variables: dict[str, Any]) -> Rendered:
    """Render ``template`` in ``language`` with exactly the catalog's variables."""
    spec = TEMPLATES[template]
    missing = set(spec.variables) - set(variables)
    extra = set(variables) - set(spec.variables)
    if missing or extra:
        raise ValueError(f"{template}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    env = environment()
    text_template = env.get_template(f"{template}/{language}.txt")
    context = {**variables, "language": language}
    subject = " ".join(_block(text_template, "subject", context).split())
    text = _block(text_template, "body", context)
    html = env.get_template(f"{template}/{language}.html").render({**context, "subject": subject})
    return Rendered(subject=subject, text=text, html=html)


def available() -> list[dict[str, Any]]:
    """Every template with the languages that have both files, for GET /notifications/templates."""
    out = []
    for spec in TEMPLATES.values():
        languages = [
            lang
            for lang in LANGUAGES
            if (TEMPLATE_DIR / spec.name / f"{lang}.txt").is_file()
            and (TEMPLATE_DIR / spec.name / f"{lang}.html").is_file()
        ]
        out.append(
            {
                "template": spec.name,
                "event_types": list(spec.event_types),
                "description": spec.description,
                "languages": languages,
                "variables": list(spec.variables),
            }
        )
    return out


# --- values as the templates show them ------------------------------------------------------------

_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                           "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})  # fmt: skip


def money(amount: int, currency: str) -> str:
    """Minor units as a decimal amount with its ISO code: ``1250, EUR`` -> ``12.50 EUR``."""
    if currency.upper() in _ZERO_DECIMAL:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency}"


def when(moment: datetime, timezone: str) -> str:
    """A moment in the event's own time zone: ``2027-04-01 09:00 (Europe/Berlin)``."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} ({timezone})"
