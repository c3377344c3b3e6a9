"""The pipeline's fixtures for the identity tests that go through it (password reset e-mails,
Telegram notifications after linking): the relay, in-process workers, the SMTP stand-in."""

from tests.notification.conftest import (  # noqa: F401  (fixtures)
    notify_settings,
    smtp,
    telegram,
)
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import worker_settings, workers  # noqa: F401  (fixtures)
