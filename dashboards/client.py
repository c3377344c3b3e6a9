"""The dashboards' only way to the platform: the REST API, called with the signed-in user's
token. Tenancy and roles are therefore the API's: the dashboards see exactly what the user may."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

V1 = "/api/v1"


class ApiError(Exception):
    """An error answer of the API (its stable ``code`` and ``message``), or no answer at all."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details  # e.g. a 422's [{"loc", "msg", "type"}], a 409's {"fields"}


class Unauthorized(ApiError):
    """The token is missing, expired or revoked: the user must sign in again."""


NOT_SIGNED_IN = "not_signed_in"  # the code of an Unauthorized raised for a visit without cookies


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None


class ApiClient:
    """One user's view of the API (``token``); ``http`` is shared by every user."""

    def __init__(self, http: httpx.Client, token: str | None) -> None:
        self.http = http
        self.token = token

    # --- plumbing -------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.http.request(method, V1 + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(503, "api_unreachable", f"the API did not answer: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
                details = error.get("details")
            except (ValueError, KeyError, TypeError, AttributeError):
                code, message, details = "http_error", response.text[:200], None
            kind = Unauthorized if response.status_code == 401 else ApiError
            raise kind(response.status_code, code, message, details)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: _param(v) for k, v in params.items() if v is not None}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: dict | None = None, **kwargs: Any) -> Any:
        return self._call("POST", path, json=body, **kwargs)

    def put(self, path: str, body: dict) -> Any:
        return self._call("PUT", path, json=body)

    def patch(self, path: str, body: dict) -> Any:
        return self._call("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def every(self, path: str, **params: Any) -> list[dict]:
        """Every item of a paged list, following ``next_cursor`` (100 a page)."""
        items: list[dict] = []
        cursor = None
        while True:
            page = self.get(path, **params, limit=100, cursor=cursor)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    # --- identity ---------------------------------------------------------------------------

    def login(self, email: str, password: str) -> Tokens:
        body = self.post("/auth/login", {"email": email, "password": password})
        return Tokens(body["access_token"], body.get("refresh_token"))

    def refresh(self, refresh_token: str) -> Tokens:
        body = self.post("/auth/refresh", {"refresh_token": refresh_token})
        return Tokens(body["access_token"], body.get("refresh_token"))

    def logout(self, refresh_token: str) -> None:
        self.post("/auth/logout", {"refresh_token": refresh_token})

    def me(self) -> dict:
        return self.get("/users/me")

    def organizations(self) -> list[dict]:
        """The user's organizations, each with the user's ``role`` in it."""
        return self.every("/organizations")

    # --- events -----------------------------------------------------------------------------

    def organization_events(self, organization_id: str) -> list[dict]:
        return self.every(f"/organizations/{organization_id}/events")

    def event(self, event_id: str) -> dict:
        return self.get(f"/events/{event_id}")

    def event_action(self, event_id: str, action: str, body: dict | None = None) -> dict:
        return self.post(f"/events/{event_id}/{action}", body)

    def create_event(self, body: dict) -> dict:
        return self.post("/events", body)

    def update_event(self, event_id: str, changes: dict) -> dict:
        return self.put(f"/events/{event_id}", changes)

    def ticket_types(self, event_id: str) -> list[dict]:
        return self.get(f"/events/{event_id}/ticket-types")["items"]

    def create_ticket_type(self, event_id: str, body: dict) -> dict:
        return self.post(f"/events/{event_id}/ticket-types", body)

    def update_ticket_type(self, event_id: str, ticket_type_id: str, changes: dict) -> dict:
        return self.put(f"/events/{event_id}/ticket-types/{ticket_type_id}", changes)

    def groups(self, organization_id: str) -> list[dict]:
        return self.every(f"/organizations/{organization_id}/groups")

    def upload_media(self, organization_id: str, purpose: str, name: str, content: bytes) -> dict:
        """``POST /media/upload``: the fields before the file, so a refused caller's file is not
        even read (docs/media.md)."""
        return self._call(
            "POST",
            "/media/upload",
            data={"organization_id": organization_id, "purpose": purpose},
            files={"file": (name, content, "application/octet-stream")},
        )

    def cover_image(self, event_id: str, variant: str = "card") -> tuple[bytes, str] | None:
        """The event's cover as the API's redirect serves it (a short-lived presigned URL, read
        here as a browser's ``<img>`` would), or None without one or when it cannot be read."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            answer = self.http.get(
                f"{V1}/events/{event_id}/cover", params={"variant": variant}, headers=headers
            )
            if answer.status_code not in (302, 303, 307) or "location" not in answer.headers:
                return None
            image = httpx.get(answer.headers["location"], timeout=10)
        except httpx.HTTPError:
            return None
        if image.status_code != 200:
            return None
        return image.content, image.headers.get("content-type", "image/webp")

    def attachment_file(self, event_id: str, attachment_id: str) -> tuple[bytes, str] | None:
        """An event attachment's bytes as its download serves them (the API's redirect to a
        short-lived presigned link, followed here), or None when it cannot be read."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            answer = self.http.get(
                f"{V1}/events/{event_id}/attachments/{attachment_id}/download", headers=headers
            )
            if answer.status_code not in (302, 303, 307) or "location" not in answer.headers:
                return None
            got = httpx.get(answer.headers["location"], timeout=30)
        except httpx.HTTPError:
            return None
        if got.status_code != 200:
            return None
        return got.content, got.headers.get("content-type", "application/octet-stream")

    # --- analytics --------------------------------------------------------------------------

    def dashboard(
        self, event_id: str, start: datetime | None, end: datetime | None, granularity: str
    ) -> dict:
        return self.get(
            f"/analytics/events/{event_id}/dashboard",
            **{"from": start, "to": end, "granularity": granularity},
        )

    def report(self, organization_id: str, start: datetime, end: datetime) -> dict:
        return self.get(
            f"/analytics/organizations/{organization_id}/report", **{"from": start, "to": end}
        )

    def start_export(self, body: dict, idempotency_key: str) -> dict:
        return self.post("/analytics/export", body, headers={"X-Idempotency-Key": idempotency_key})

    def export(self, export_id: str) -> dict:
        return self.get(f"/analytics/exports/{export_id}")

    def exports(self, organization_id: str) -> list[dict]:
        """The organization's latest exports (one page), newest first."""
        return self.get("/analytics/exports", organization_id=organization_id)["items"]


def _param(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
