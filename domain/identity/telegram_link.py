"""Linking an account to Telegram through the bot, and the bot's commands (docs/telegram.md).

An account asks for a link (``issue_link``): a one-time token, kept in Redis only as its
SHA-256 with a TTL, put in a ``https://t.me/<bot>?start=<token>`` deep link. Telegram opens the
chat with the bot and sends ``/start <token>`` when the user presses Start; the bot's webhook hands
the update to ``handle_update``, which links the sender's Telegram id to the token's account.

Updates are handled once per ``update_id`` (Telegram redelivers until it gets a 2xx): the id goes
into the inbox table in the same transaction as what the update changed. A refused update changes
nothing but is still recorded, so a redelivery does not answer twice.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from domain.errors import Conflict
from domain.identity.events import UserTelegramLinked, UserTelegramUnlinked
from domain.identity.models import User
from domain.uow import UnitOfWork

_PREFIX = "aq:tglink"
INBOX_CONSUMER = "telegram.webhook"
UNIQUE_VIOLATION = "23505"
_UPDATES = uuid.UUID("6f0b1c1e-8f54-4c55-9d1e-7a3c2b9e4d10")  # uuid5 namespace of update ids


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LinkOffer:
    url: str
    expires_at: datetime


class LinkTokens:
    """One-time link tokens in Redis: ``aq:tglink:<sha256>`` -> the account id, with a TTL."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    def issue(self, user_id: uuid.UUID) -> str:
        # 32 characters of A-Z a-z 0-9 _ -: what Telegram's start parameter takes (up to 64).
        token = secrets.token_urlsafe(24)
        self.client.set(f"{_PREFIX}:{_hash(token)}", str(user_id), ex=self.ttl_s)
        return token

    def peek(self, token: str) -> uuid.UUID | None:
        raw = self.client.get(f"{_PREFIX}:{_hash(token)}")
        return uuid.UUID(raw.decode() if isinstance(raw, bytes) else raw) if raw else None

    def consume(self, token: str) -> uuid.UUID | None:
        raw = self.client.getdel(f"{_PREFIX}:{_hash(token)}")
        return uuid.UUID(raw.decode() if isinstance(raw, bytes) else raw) if raw else None


def issue_link(user: User, tokens: LinkTokens, *, bot_username: str, now: datetime) -> LinkOffer:
    """A deep link that links ``user`` to the Telegram account that opens it."""
    token = tokens.issue(user.id)
    return LinkOffer(
        url=f"https://t.me/{bot_username}?start={token}",
        expires_at=now + timedelta(seconds=tokens.ttl_s),
    )


def only_sign_in(user: User) -> bool:
    """Telegram is the account's only way to sign in (no e-mail and password)."""
    return user.email is None or user.password_hash is None


def unlink(uow: UnitOfWork, user: User, *, via: str) -> None:
    """Remove the account's Telegram link, unless it is the only way to sign in."""
    if user.telegram_id is None:
        raise Conflict("This account is not linked to Telegram", code="telegram_not_linked")
    if only_sign_in(user):
        raise Conflict(
            "Telegram is this account's only way to sign in: it cannot be unlinked",
            code="telegram_only_sign_in",
        )
    telegram_id = user.telegram_id
    user.telegram_id = None
    user.telegram_username = None
    uow.session.flush()
    uow.emit(UserTelegramUnlinked.of(user, telegram_id=telegram_id, via=via))


# --- the bot ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A message back to the chat the update came from."""

    chat_id: int
    text: str


# The bot's replies, in the sender's Telegram language (``from.language_code``) where the
# platform speaks it (en, ru), else in English.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "help": "This is the AqStream bot: it sends your tickets, receipts and reminders.\n"
        "To link your AqStream account, open your profile and choose “Link Telegram”, then "
        "press Start in the chat that opens.\n/stop unlinks this Telegram account.",
        "expired": "This link has expired or was already used. Ask for a new one in your "
        "AqStream profile (it is valid for a few minutes).",
        "taken": "This Telegram account is already linked to another AqStream account; nothing "
        "was changed. Send /stop there first (or unlink it in that account's profile), then use "
        "the link again.",
        "private": "Write to me in a private chat.",
        "is_linked": "This Telegram account is linked to the AqStream account “{name}”. Your "
        "notifications come here. /stop unlinks it.",
        "already": "Already linked to the AqStream account “{name}”.",
        "linked": "Linked to the AqStream account “{name}”. Your notifications now come here "
        "(unless you chose e-mail in your notification settings). /stop unlinks it.",
        "not_linked": "This Telegram account is not linked to any AqStream account.",
        "only_sign_in": "You sign in to AqStream with Telegram only, so it cannot be unlinked. "
        "To stop notifications, choose “none” in your notification settings.",
        "unlinked": "Unlinked: AqStream will not write to you here any more. Link again from "
        "your profile.",
    },
    "ru": {
        "help": "Это бот AqStream: он присылает ваши билеты, чеки и напоминания.\n"
        "Чтобы привязать учётную запись AqStream, откройте профиль, выберите «Привязать "
        "Telegram» и нажмите «Старт» в открывшемся чате.\n/stop отвязывает этот Telegram.",
        "expired": "Ссылка устарела или уже использована. Запросите новую в профиле AqStream "
        "(она действует несколько минут).",
        "taken": "Этот Telegram уже привязан к другой учётной записи AqStream; ничего не "
        "изменено. Сначала отправьте /stop там (или отвяжите его в профиле той учётной записи), "
        "затем откройте ссылку снова.",
        "private": "Напишите мне в личном чате.",
        "is_linked": "Этот Telegram привязан к учётной записи AqStream «{name}». Уведомления "
        "приходят сюда. /stop отвязывает его.",
        "already": "Уже привязан к учётной записи AqStream «{name}».",
        "linked": "Привязан к учётной записи AqStream «{name}». Теперь уведомления приходят сюда "
        "(если в настройках уведомлений не выбрана почта). /stop отвязывает его.",
        "not_linked": "Этот Telegram не привязан ни к одной учётной записи AqStream.",
        "only_sign_in": "Вы входите в AqStream только через Telegram, поэтому его нельзя "
        "отвязать. Чтобы не получать уведомления, выберите «нет» в настройках уведомлений.",
        "unlinked": "Отвязан: AqStream больше не будет писать вам сюда. Привязать снова можно в "
        "профиле.",
    },
}


def say(language: str, key: str, **values: str) -> str:
    """The reply ``key`` in ``language`` (an IETF tag such as ``ru-RU``; English otherwise)."""
    lang = (language or "").split("-")[0].split("_")[0].lower()
    return MESSAGES.get(lang, MESSAGES["en"])[key].format(**values)


def _command(message_text: str) -> tuple[str, str]:
    """``/start@bot payload`` -> ("/start", "payload")."""
    head, _, rest = message_text.strip().partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip()


def _first_time(uow: UnitOfWork, bot_id: str, update_id: int) -> bool:
    # update_id counts per bot: a new bot token starts another sequence.
    event_id = uuid.uuid5(_UPDATES, f"{bot_id}:{update_id}")
    inserted = uow.session.execute(
        text(
            "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :id) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"consumer": INBOX_CONSUMER, "id": event_id},
    ).first()
    return inserted is not None


def _holder(uow: UnitOfWork, telegram_id: int) -> User | None:
    """The account linked to ``telegram_id`` (the sender proved to be it: Telegram says so)."""
    uow.set_capability("login_telegram", str(telegram_id))
    return uow.session.scalar(
        select(User).where(User.telegram_id == telegram_id, User.deleted_at.is_(None))
    )


def handle_update(
    uow: UnitOfWork, update: Mapping[str, Any], tokens: LinkTokens, *, bot_id: str
) -> Reply | None:
    """Handle one webhook update (once per ``update_id`` of bot ``bot_id``); the reply to send,
    if any."""
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or not _first_time(uow, bot_id, update_id):
        return None
    message = update.get("message")
    if not isinstance(message, Mapping):
        return None  # edits, callbacks, channel posts...: nothing the bot answers
    sender, chat = message.get("from"), message.get("chat")
    if not isinstance(sender, Mapping) or not isinstance(chat, Mapping):
        return None
    telegram_id, chat_id = sender.get("id"), chat.get("id")
    if not isinstance(telegram_id, int) or not isinstance(chat_id, int) or sender.get("is_bot"):
        return None
    lang = sender.get("language_code")
    lang = lang if isinstance(lang, str) else "en"
    if chat.get("type") != "private":
        return Reply(chat_id, say(lang, "private"))
    command, argument = _command(str(message.get("text") or ""))
    username = sender.get("username")
    username = username if isinstance(username, str) and username else None
    if command == "/start" and argument:
        return Reply(chat_id, _link(uow, argument, telegram_id, username, tokens, lang))
    if command == "/start":
        holder = _holder(uow, telegram_id)
        if holder is not None:
            return Reply(chat_id, say(lang, "is_linked", name=holder.display_name))
        return Reply(chat_id, say(lang, "help"))
    if command == "/stop":
        return Reply(chat_id, _stop(uow, telegram_id, lang))
    return Reply(chat_id, say(lang, "help"))


def _link(
    uow: UnitOfWork,
    token: str,
    telegram_id: int,
    username: str | None,
    tokens: LinkTokens,
    lang: str = "en",
) -> str:
    user_id = tokens.peek(token)
    if user_id is None:
        return say(lang, "expired")
    holder = _holder(uow, telegram_id)
    if holder is not None and holder.id != user_id:
        return say(lang, "taken")  # the token stays usable: unlinked there, the same link works
    if tokens.consume(token) != user_id:
        return say(lang, "expired")  # spent by a racing update in between
    uow.act_as(user_id)
    user = uow.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        return say(lang, "expired")
    if holder is not None:
        if username and user.telegram_username != username:
            user.telegram_username = username
        return say(lang, "already", name=user.display_name)
    previous = user.telegram_id
    user.telegram_id = telegram_id
    user.telegram_username = username
    try:
        with uow.session.begin_nested():
            uow.session.flush()
    except IntegrityError as exc:
        # Linked elsewhere by a racing update since we looked: nothing of this one is kept.
        if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        uow.session.expire(user)
        return say(lang, "taken")
    uow.emit(UserTelegramLinked.of(user, previous=previous))
    return say(lang, "linked", name=user.display_name)


def _stop(uow: UnitOfWork, telegram_id: int, lang: str = "en") -> str:
    holder = _holder(uow, telegram_id)
    if holder is None:
        return say(lang, "not_linked")
    uow.act_as(holder.id)
    try:
        unlink(uow, holder, via="bot")
    except Conflict as exc:
        if exc.code == "telegram_only_sign_in":
            return say(lang, "only_sign_in")
        raise
    return say(lang, "unlinked")
