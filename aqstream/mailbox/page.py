"""The mailbox's web page (like MailHog or Mailpit): every message the platform sent, newest
first, the chosen one rendered beside the list, attachments viewable; the page reloads itself
when something new arrives. Plus the same as JSON for tools and tests."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aqstream.mailbox.store import Message, Store

REFRESH_MS = 3000
# The e-mail's own HTML is shown in a sandboxed frame: no scripts, no requests to anywhere.
BODY_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{margin:0;font:14px/1.4 system-ui,sans-serif;color:#1d2330;display:flex;height:100vh}
nav{width:44%;max-width:640px;overflow-y:auto;border-right:1px solid #dde1e8;background:#f7f8fa}
header{padding:10px 14px;border-bottom:1px solid #dde1e8;background:#fff}
header h1{font-size:16px;margin:0}header p{margin:2px 0 0;color:#687185;font-size:12px}
nav a{display:block;padding:8px 14px;border-bottom:1px solid #e6e9ef;color:inherit;
text-decoration:none}
nav a.on{background:#e3ecff}nav a:hover{background:#edf1f8}
.row{display:flex;gap:8px;align-items:baseline;font-size:12px;color:#687185}
.to{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.subject{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.ch{font-size:11px;padding:0 6px;border-radius:8px;color:#fff}
.email{background:#4f6fd8}.telegram{background:#2aa3df}
main{flex:1;overflow-y:auto;padding:14px 18px}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0 0 12px}
dt{color:#687185}dd{margin:0}
iframe{width:100%;height:60vh;border:1px solid #dde1e8;border-radius:4px;background:#fff}
pre{white-space:pre-wrap;background:#f7f8fa;padding:10px;border-radius:4px}
.bubble{max-width:480px;background:#effdde;padding:10px 12px;border-radius:10px;
white-space:pre-wrap}
.att img{max-width:240px;border:1px solid #dde1e8;margin:4px 8px 4px 0}
.empty{padding:24px 14px;color:#687185}
"""

SCRIPT = """
const shown = %d;
setInterval(async () => {
  try {
    const r = await fetch('/api/latest');
    if (r.ok && (await r.json()).id !== shown) location.reload();
  } catch (e) {}
}, %d);
"""


def _when(message: Message) -> str:
    return message.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _title(message: Message) -> str:
    if message.subject:
        return message.subject
    first = message.text.strip().splitlines()[0] if message.text.strip() else "(photo)"
    return first[:120]


def _recipients(message: Message) -> str:
    prefix = "chat " if message.channel == "telegram" else ""
    return prefix + ", ".join(message.recipients)


def _item(message: Message, selected: int | None) -> str:
    on = ' class="on"' if message.id == selected else ""
    return (
        f'<a href="/?id={message.id}"{on}><div class="row">'
        f'<span class="ch {message.channel}">{message.channel}</span>'
        f'<span class="to">{escape(_recipients(message))}</span>'
        f"<span>{escape(_when(message))}</span></div>"
        f'<div class="subject">{escape(_title(message))}</div></a>'
    )


def _attachments(message: Message) -> str:
    items = []
    for n, a in enumerate(message.attachments, 1):
        url = f"/messages/{message.id}/attachments/{n}"
        label = escape(f"{a.filename} ({a.content_type}, {len(a.data):,} bytes)")
        image = f'<img src="{url}" alt="{escape(a.filename)}"><br>' if a.content_type.startswith(
            "image/"
        ) else ""  # fmt: skip
        items.append(f'<div class="att">{image}<a href="{url}" target="_blank">{label}</a></div>')
    return "".join(items)


def _detail(message: Message) -> str:
    fields = [
        ("Channel", message.channel + (f" ({message.method})" if message.method else "")),
        ("From", message.sender),
        ("To", _recipients(message)),
        ("Received", _when(message)),
    ]
    if message.subject:
        fields.append(("Subject", message.subject))
    head = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in fields)
    if message.channel == "telegram":
        body = f'<div class="bubble">{escape(message.text)}</div>' if message.text else ""
        return f"<dl>{head}</dl>{_attachments(message)}{body}"
    html = (
        f'<iframe sandbox src="/messages/{message.id}/html" title="HTML body"></iframe>'
        if message.html is not None
        else ""
    )
    text = f"<h4>Text</h4><pre>{escape(message.text)}</pre>" if message.text else ""
    return f"<dl>{head}</dl>{_attachments(message)}{html}{text}"


def render(store: Store, selected: int | None) -> str:
    messages = store.messages()
    chosen = next((m for m in messages if m.id == selected), messages[0] if messages else None)
    items = "".join(_item(m, chosen.id if chosen else None) for m in messages)
    latest = messages[0].id if messages else 0
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>AqStream mailbox</title>"
        f"<style>{STYLE}</style></head><body><nav><header><h1>AqStream mailbox</h1>"
        f"<p>{len(messages)} message(s): e-mails and Telegram messages sent by the local platform"
        f" (newest first, the last {store.keep} kept)</p></header>"
        f"{items or '<p class=empty>Nothing yet.</p>'}</nav>"
        f"<main>{_detail(chosen) if chosen else ''}</main>"
        f"<script>{SCRIPT % (latest, REFRESH_MS)}</script></body></html>"
    )


class Page:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/health", self.health),
            Route("/api/latest", self.latest),
            Route("/api/messages", self.list_messages),
            Route("/messages/{id:int}/html", self.html),
            Route("/messages/{id:int}/attachments/{n:int}", self.attachment),
        ]

    async def index(self, request: Request) -> HTMLResponse:
        raw = request.query_params.get("id", "")
        return HTMLResponse(render(self.store, int(raw) if raw.isdigit() else None))

    async def health(self, _request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def latest(self, _request: Request) -> JSONResponse:
        return JSONResponse({"id": self.store.latest_id()})

    async def list_messages(self, _request: Request) -> JSONResponse:
        return JSONResponse([m.summary() for m in self.store.messages()])

    def _message(self, request: Request) -> Message | None:
        return self.store.get(request.path_params["id"])

    async def html(self, request: Request) -> Response:
        message = self._message(request)
        if message is None or message.html is None:
            return PlainTextResponse("no such message", 404)
        return HTMLResponse(message.html, headers={"Content-Security-Policy": BODY_POLICY})

    async def attachment(self, request: Request) -> Response:
        message = self._message(request)
        n = request.path_params["n"]
        if message is None or not 1 <= n <= len(message.attachments):
            return PlainTextResponse("no such attachment", 404)
        a = message.attachments[n - 1]
        name = a.filename.replace('"', "")
        return Response(
            a.data,
            media_type=a.content_type,
            headers={
                "Content-Disposition": f'inline; filename="{name}"',
                "Content-Security-Policy": BODY_POLICY,
                "X-Content-Type-Options": "nosniff",
            },
        )
