"""``make screenshots``: the README's pictures (docs/screenshots/*.png) of a running platform.

Start ``make run`` (it seeds the demo and prints its organizers), wait for the demo's data, then
``make screenshots``. The dashboards' and the API's addresses come from the settings
(AQSTREAM_DASHBOARDS_HOST/_PORT, AQSTREAM_API_HOST/_PORT, AQSTREAM_DASHBOARDS_API_URL), as
``aqstream run`` reads them, or from the options; the organizer is the demo's first one unless
``--email``/``--password`` say otherwise. The work is dashboards/screenshots.py's."""

from __future__ import annotations

import argparse
from pathlib import Path

from aqstream.cli import demo_accounts
from core.settings import Settings
from dashboards.app import api_url
from dashboards.screenshots import capture

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    host = (
        "127.0.0.1" if settings.dashboards_host in ("0.0.0.0", "::") else settings.dashboards_host
    )
    _, email, password = demo_accounts()[0]
    parser = argparse.ArgumentParser(prog="make screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards-url", default=f"http://{host}:{settings.dashboards_port}")
    parser.add_argument("--api-url", default=api_url(settings))
    parser.add_argument("--email", default=email, help="an organizer (default: the demo's first)")
    parser.add_argument("--password", default=password)
    parser.add_argument("--out", type=Path, default=OUT, help="folder (default: docs/screenshots)")
    args = parser.parse_args(argv)
    print(f"photographing {args.dashboards_url} as {args.email} into {args.out}")
    capture(args.dashboards_url, args.api_url, args.email, args.password, args.out)


if __name__ == "__main__":
    main()
