"""Pure rules of Telegram linking and password reset tokens (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.identity.models import User
from domain.identity.password_reset import signing_key, token_for
from domain.identity.telegram_link import _command, only_sign_in
from domain.notification.password_reset import minutes_left


def test_bot_commands_are_read_as_telegram_sends_them() -> None:
    assert _command("/start abc_-123") == ("/start", "abc_-123")
    assert _command("/start@aqstream_local_bot abc") == ("/start", "abc")
    assert _command("  /STOP  ") == ("/stop", "")
    assert _command("hello there") == ("hello", "there")
    assert _command("") == ("", "")


def test_reset_tokens_are_the_reset_id_s_hmac_under_a_key_of_their_own() -> None:
    key = signing_key("ticket-key")
    reset_id = uuid.UUID("01a25121-6f65-7332-b8cb-8e812fd672af")
    token = token_for(key, reset_id)
    assert token == token_for(signing_key("ticket-key"), reset_id)  # the worker derives the same
    assert len(token) == 43 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert token != token_for(signing_key("another-key"), reset_id)
    assert token != token_for(key, uuid.UUID(int=reset_id.int + 1))
    # Domain-separated: the ticket key itself never signs a reset token.
    assert token_for(b"ticket-key", reset_id) != token


def test_telegram_is_the_only_sign_in_without_e_mail_and_password() -> None:
    assert only_sign_in(User(telegram_id=1, display_name="t"))
    assert only_sign_in(User(telegram_id=1, email="a@example.org", display_name="t"))
    assert not only_sign_in(
        User(telegram_id=1, email="a@example.org", password_hash="$argon2id$x", display_name="t")
    )


def test_the_reset_e_mail_states_the_whole_minutes_left_never_more() -> None:
    asked = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    expires = asked + timedelta(minutes=60)
    assert minutes_left(expires, asked) == 60
    assert minutes_left(expires, asked + timedelta(seconds=1)) == 59
    assert minutes_left(expires, asked + timedelta(seconds=31)) == 59  # not rounded up to 60
    assert minutes_left(expires, asked + timedelta(minutes=59, seconds=30)) == 1


def test_hashing_parameters_are_settings_and_older_hashes_still_verify() -> None:
    from domain.identity import passwords

    before = passwords._hasher
    try:
        passwords.configure(time_cost=1, memory_kib=8_192, parallelism=1)
        cheap = passwords.hash_password("correct horse battery")
        assert "$argon2id$v=19$m=8192,t=1,p=1$" in cheap
        passwords.configure(time_cost=2, memory_kib=19_456, parallelism=1)
        assert passwords.verify_password(cheap, "correct horse battery")  # made before: verifies
        assert not passwords.verify_password(cheap, "wrong horse battery")
        assert passwords.needs_rehash(cheap)  # and is re-hashed at the next sign-in
        assert not passwords.needs_rehash(passwords.hash_password("x" * 12))
    finally:
        passwords.configure(
            time_cost=before.time_cost,
            memory_kib=before.memory_cost,
            parallelism=before.parallelism,
        )


def test_the_bot_says_everything_in_each_of_its_languages() -> None:
    import string

    from domain.identity.telegram_link import MESSAGES, say

    for language, messages in MESSAGES.items():
        assert messages.keys() == MESSAGES["en"].keys(), language
        for key, text in messages.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            english = {f for _, f, _, _ in string.Formatter().parse(MESSAGES["en"][key]) if f}
            assert fields == english, (language, key)
    assert say("ru-RU", "already", name="Ада") == "Уже привязан к учётной записи AqStream «Ада»."
    assert say("", "not_linked") == say("pt_BR", "not_linked") == MESSAGES["en"]["not_linked"]
