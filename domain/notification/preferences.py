"""Each user's notification preferences: the channel (or none) and quiet hours.

Without a row (or with ``channel`` unset) the channel is the default: Telegram when the account is
linked to Telegram, else e-mail when it has an address. Quiet hours are a daily window in the
user's time zone; a message due inside it is deferred to the window's end, never dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.errors import Conflict, NotFound
from domain.identity.models import User
from domain.notification.models import Channel, NotificationPreference
from domain.timezones import check_timezone
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    def until(self, moment: datetime) -> datetime | None:
        """When the quiet window around ``moment`` ends (UTC), or None if ``moment`` is outside
        it. A window whose start is after its end runs over midnight (22:00-08:00)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            quiet = self.start <= now < self.end
            end_day = local.date()
        else:
            quiet = now >= self.start or now < self.end
            end_day = local.date() + timedelta(days=1) if now >= self.start else local.date()
        if not quiet:
            return None
        # Wall-clock end in the user's zone; across a DST change it is still the local end.
        return datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Preferences:
    """A user's stored choice (``channel`` None: the default) and the channel that applies."""

    user_id: uuid.UUID
    channel: Channel | None
    effective_channel: Channel
    quiet_hours: QuietHours | None


def default_channel(user: User) -> Channel:
    if user.telegram_id is not None:
        return Channel.TELEGRAM
    if user.email:
        return Channel.EMAIL
    return Channel.NONE


def _available(user: User, channel: Channel) -> bool:
    return (channel == Channel.TELEGRAM and user.telegram_id is not None) or (
        channel == Channel.EMAIL and bool(user.email)
    )


def effective_channel(user: User, stored: NotificationPreference | None) -> Channel:
    """The channel a message to ``user`` goes by now. A chosen channel the account has since lost
    (Telegram unlinked) falls back to the default rather than silently sending nothing."""
    chosen = stored.channel if stored is not None else None
    if chosen == Channel.NONE:
        return Channel.NONE
    if chosen is not None and _available(user, chosen):
        return chosen
    return default_channel(user)


def address(user: User, channel: Channel) -> str | None:
    if channel == Channel.TELEGRAM and user.telegram_id is not None:
        return str(user.telegram_id)
    if channel == Channel.EMAIL and user.email:
        return user.email
    return None


def quiet_hours(stored: NotificationPreference | None) -> QuietHours | None:
    if stored is None or stored.quiet_start is None or stored.quiet_end is None:
        return None
    return QuietHours(stored.quiet_start, stored.quiet_end, stored.timezone or "UTC")


def _me(uow: UnitOfWork) -> User:
    user = uow.session.get(User, uow.user_id) if uow.user_id else None
    if user is None or user.deleted_at is not None:
        raise NotFound("User not found")
    return user


def _stored(uow: UnitOfWork, user_id: uuid.UUID) -> NotificationPreference | None:
    return uow.session.scalar(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    )


def _view(user: User, stored: NotificationPreference | None) -> Preferences:
    return Preferences(
        user_id=user.id,
        channel=stored.channel if stored is not None else None,
        effective_channel=effective_channel(user, stored),
        quiet_hours=quiet_hours(stored),
    )


def get_preferences(uow: UnitOfWork) -> Preferences:
    """The calling user's preferences (the defaults when never set)."""
    user = _me(uow)
    return _view(user, _stored(uow, user.id))


def set_preferences(
    uow: UnitOfWork, *, channel: Channel | None, quiet: QuietHours | None
) -> Preferences:
    """Replace the calling user's preferences. A channel the account cannot be reached on is a
    409 ``channel_unavailable``: a valid choice that conflicts with the account as it is (link
    Telegram or add an e-mail address first)."""
    user = _me(uow)
    if channel in (Channel.TELEGRAM, Channel.EMAIL) and not _available(user, channel):
        raise Conflict(
            f"Your account has no {'Telegram link' if channel == Channel.TELEGRAM else 'e-mail'}",
            code="channel_unavailable",
            details={"channel": channel.value},
        )
    if quiet is not None:
        check_timezone(quiet.timezone)
        if quiet.start == quiet.end:
            quiet = None  # the window [start, end) is empty: no quiet hours
    stored = _stored(uow, user.id)
    if stored is None:
        stored = NotificationPreference(user_id=user.id)
        uow.session.add(stored)
    stored.channel = channel
    stored.quiet_start = quiet.start if quiet else None
    stored.quiet_end = quiet.end if quiet else None
    stored.timezone = quiet.timezone if quiet else None
    uow.session.flush()
    return _view(user, stored)
