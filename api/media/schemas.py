"""Response bodies of media, and the body that sets an organization's logo."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from api.types import RequestModel
from domain.media.models import Media, MediaPurpose, MediaVariant, VariantName


class VariantOut(BaseModel):
    name: VariantName
    content_type: str
    size_bytes: int
    width: int | None = Field(description="Pixels; null for documents")
    height: int | None


class MediaOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    purpose: MediaPurpose
    content_type: str = Field(description="Detected from the content, not from the client")
    size_bytes: int = Field(description="Of the uploaded file")
    sha256: str = Field(description="Of the uploaded file, hex")
    filename: str | None = Field(description="As the client named it; informational only")
    width: int | None = Field(description="Of the image as shown (orientation applied)")
    height: int | None
    variants: list[VariantOut] = Field(
        description="Images: thumbnail, card, cover (WebP). Documents: original."
    )
    created_at: datetime

    @classmethod
    def of(cls, media: Media, variants: list[MediaVariant]) -> MediaOut:
        return cls(
            id=media.id,
            organization_id=media.tenant_id,
            purpose=media.purpose,
            content_type=media.content_type,
            size_bytes=media.size_bytes,
            sha256=media.sha256,
            filename=media.filename,
            width=media.width,
            height=media.height,
            variants=[
                VariantOut(
                    name=VariantName(v.name),
                    content_type=v.content_type,
                    size_bytes=v.size_bytes,
                    width=v.width,
                    height=v.height,
                )
                for v in variants
            ],
            created_at=media.created_at,
        )


class MediaUrl(BaseModel):
    url: str = Field(description="Presigned GET URL of the object; anyone holding it can fetch")
    variant: VariantName
    content_type: str
    width: int | None
    height: int | None
    expires_at: datetime


class LogoBody(RequestModel):
    media_id: uuid.UUID | None = Field(
        description="An image of the organization's own; null removes the logo"
    )


class AttachmentIn(RequestModel):
    media_id: uuid.UUID = Field(description="A document (PDF) uploaded with purpose `attachment`")
    title: str = Field(
        min_length=1, max_length=200, examples=["Programme"], description="As readers see it"
    )
    position: int = Field(default=0, ge=0, le=1000, description="Listed in ascending order")

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("The title is blank")
        return value.strip()


class AttachmentOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    title: str
    position: int
    content_type: str
    size_bytes: int
    filename: str | None = Field(description="As uploaded; the download's name when set")
    download_url: str = Field(
        description="Redirects to a short-lived download link (anyone who may see the event)"
    )
    created_at: datetime
