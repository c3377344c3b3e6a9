"""Responses for hot routes: a schema already built and validated, sent as JSON as is."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as the JSON body FastAPI's ``response_model`` would send, without FastAPI's
    second validation of it (which a sync route runs in the thread pool: one more hop). The route
    still declares ``response_model`` for its OpenAPI document; the model must be that schema."""
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status_code,
        media_type="application/json",
    )
