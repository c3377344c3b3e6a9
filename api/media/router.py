"""Media: uploads, metadata, presigned URLs, deletion; event covers and organization logos."""

from __future__ import annotations

import mimetypes
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import text

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    OptionalUowDep,
    StateDep,
    UowDep,
    enter_tenant_as,
    public_or_member,
    require_resource_role,
    require_role,
)
from api.errors import responses
from api.media.schemas import AttachmentIn, AttachmentOut, LogoBody, MediaOut, MediaUrl
from api.media.upload import UploadDep
from api.organization.schemas import MyOrganization, OrganizationOut
from api.pagination import Page
from core.resources import make_s3
from domain.errors import NotFound
from domain.media import attachments, service
from domain.media.models import VariantName
from domain.media.storage import MediaStorage
from domain.organization import service as organizations
from domain.organization.models import Role

router = APIRouter(tags=["media"])


def _media_member(*roles: Role):
    """The caller's membership of the tenant owning ``media_id`` (a live file), tenant entered.

    Like require_resource_role, for a path whose id is matched as a UUID (``{media_id:uuid}``,
    so that ``/media/upload`` is not taken for an id)."""

    def dependency(media_id: uuid.UUID, uow: UowDep) -> Membership:
        tenant_id = uow.session.execute(
            text("SELECT app_resource_tenant('media', :id)"), {"id": media_id}
        ).scalar_one()
        return enter_tenant_as(uow, tenant_id, roles)

    return dependency


MediaReader = Annotated[Membership, Depends(_media_member(*READ_ROLES))]
MediaManager = Annotated[Membership, Depends(_media_member(*MANAGE_ROLES))]
EventReader = Annotated[Membership | None, Depends(public_or_member("events", "event_id"))]
EventManager = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *MANAGE_ROLES))
]
OrgReader = Annotated[Membership, Depends(require_role(*READ_ROLES))]
OrgManager = Annotated[Membership, Depends(require_role(*MANAGE_ROLES))]

OPTIONAL_AUTH = {"security": [{}, {"HTTPBearer": []}]}


async def get_storage(request: Request, state: StateDep) -> MediaStorage:
    """The media store, made once per application (a second client only signs URLs for the
    public S3 endpoint, when one is configured)."""
    storage = getattr(request.app.state, "media_storage", None)
    if storage is None:
        settings = state.settings
        signer = None
        if settings.media_public_s3_endpoint:
            public = settings.model_copy(update={"s3_endpoint": settings.media_public_s3_endpoint})
            signer = make_s3(public)
        storage = MediaStorage(state.s3, settings.s3_bucket, signer)
        request.app.state.media_storage = storage
    return storage


StorageDep = Annotated[MediaStorage, Depends(get_storage)]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["organization_id", "purpose", "file"],
                    "properties": {
                        "organization_id": {"type": "string", "format": "uuid"},
                        "purpose": {
                            "type": "string",
                            "enum": ["event_cover", "organization_logo", "attachment"],
                        },
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "minLength": 1,  # an empty file is refused (422 empty_file)
                            "description": "JPEG, PNG, WebP or GIF up to 5 MiB; PDF up to 10 "
                            "MiB (defaults; the type is read from the content). Send it after "
                            "the other fields: the caller's role is then checked before the "
                            "file is read.",
                        },
                    },
                    "additionalProperties": False,
                },
                "encoding": {"file": {"contentType": "application/octet-stream"}},
            }
        },
    }
}


def presigned(storage: StorageDep, key: str, ttl_s: int) -> tuple[str, datetime]:
    return storage.presign(key, ttl_s), datetime.now(UTC) + timedelta(seconds=ttl_s)


@router.post(
    "/media/upload",
    response_model=MediaOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 413, 415),
    openapi_extra=_UPLOAD_BODY,
)
def upload(received: UploadDep, uow: UowDep, storage: StorageDep, state: StateDep) -> MediaOut:
    """Upload a file of an organization (owners and moderators): multipart with `file`,
    `organization_id` and `purpose`. Images get thumbnail, card and cover variants."""
    member = enter_tenant_as(uow, received.form.organization_id, MANAGE_ROLES)
    media, variants = service.upload_media(
        uow,
        storage,
        tenant_id=member.tenant_id,
        uploaded_by=member.user_id,
        purpose=received.form.purpose,
        upload=received.file,
        max_image_pixels=state.settings.media_max_image_pixels,
    )
    return MediaOut.of(media, variants)


@router.get("/media/{media_id:uuid}", response_model=MediaOut, responses=responses(401, 404))
def get_media(media_id: uuid.UUID, member: MediaReader, uow: UowDep) -> MediaOut:
    """A file's metadata and variants (members of its organization)."""
    media = service.get_media(uow, media_id)
    return MediaOut.of(media, service.list_variants(uow, media_id))


@router.get("/media/{media_id:uuid}/url", response_model=MediaUrl, responses=responses(401, 404))
def media_url(
    media_id: uuid.UUID,
    member: MediaReader,
    uow: UowDep,
    storage: StorageDep,
    state: StateDep,
    response: Response,
    variant: VariantName | None = Query(
        default=None, description="Default: `cover` for images, `original` for documents"
    ),
) -> MediaUrl:
    """A short-lived presigned URL of one variant (members of its organization)."""
    media = service.get_media(uow, media_id)
    chosen = service.get_variant(uow, media, variant)
    url, expires_at = presigned(storage, chosen.storage_key, state.settings.media_url_ttl_s)
    response.headers["Cache-Control"] = "no-store"
    return MediaUrl(
        url=url,
        variant=VariantName(chosen.name),
        content_type=chosen.content_type,
        width=chosen.width,
        height=chosen.height,
        expires_at=expires_at,
    )


@router.delete(
    "/media/{media_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
)
def delete_media(media_id: uuid.UUID, member: MediaManager, uow: UowDep) -> None:
    """Delete a file no event or organization shows (owners and moderators); its objects are
    removed by the cleanup job."""
    service.delete_media(uow, media_id, member.user_id)


def redirect_to(url: str, ttl_s: int) -> RedirectResponse:
    # Cached for at most half the URL's life, so a cached redirect never points at a dead URL.
    return RedirectResponse(
        url, status_code=307, headers={"Cache-Control": f"private, max-age={ttl_s // 2}"}
    )


@router.get(
    "/events/{event_id}/cover",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "Redirect to a presigned URL of the variant"},
        **responses(404),
    },
    openapi_extra=OPTIONAL_AUTH,
)
def event_cover(
    event_id: uuid.UUID,
    member: EventReader,
    uow: OptionalUowDep,
    storage: StorageDep,
    state: StateDep,
    variant: VariantName = Query(default=VariantName.CARD),
) -> RedirectResponse:
    """The event's cover image, for anyone who may see the event: a redirect to a short-lived
    presigned URL (usable as an `<img src>`)."""
    found = service.event_cover_variant(uow, event_id, variant)
    if found is None:
        raise NotFound("No such event, or it has no cover (in this variant)")
    ttl = state.settings.media_url_ttl_s
    return redirect_to(presigned(storage, found[0], ttl)[0], ttl)


@router.get(
    "/organizations/{org_id}/logo",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "Redirect to a presigned URL of the variant"},
        **responses(401, 404),
    },
    tags=["organizations"],
)
def organization_logo(
    org_id: uuid.UUID,
    member: OrgReader,
    uow: UowDep,
    storage: StorageDep,
    state: StateDep,
    variant: VariantName = Query(default=VariantName.THUMBNAIL),
) -> RedirectResponse:
    """The organization's logo (members): a redirect to a short-lived presigned URL."""
    org = organizations.get_organization(uow, org_id)
    if org.logo_media_id is None:
        raise NotFound("The organization has no logo")
    chosen = service.get_variant(uow, service.get_media(uow, org.logo_media_id), variant)
    ttl = state.settings.media_url_ttl_s
    return redirect_to(presigned(storage, chosen.storage_key, ttl)[0], ttl)


@router.put(
    "/organizations/{org_id}/logo",
    response_model=MyOrganization,
    responses=responses(401, 403, 404),
    tags=["organizations"],
)
def set_organization_logo(
    org_id: uuid.UUID, body: LogoBody, member: OrgManager, uow: UowDep
) -> MyOrganization:
    """Set (or, with null, remove) the organization's logo: an uploaded image of its own
    (owners and moderators)."""
    org = organizations.set_logo(uow, org_id, body.media_id)
    return MyOrganization(**OrganizationOut.model_validate(org).model_dump(), role=member.role)


# --- event attachments ----------------------------------------------------------------------------


def _attachment_out(event_id: uuid.UUID, a: attachments.Listed) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        event_id=event_id,
        title=a.title,
        position=a.position,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        filename=a.filename,
        download_url=f"/api/v1/events/{event_id}/attachments/{a.id}/download",
        created_at=a.created_at,
    )


def _download_name(title: str, filename: str | None, content_type: str) -> str:
    if filename:
        return filename
    return f"{title}{mimetypes.guess_extension(content_type) or ''}"


@router.get(
    "/events/{event_id}/attachments",
    response_model=Page[AttachmentOut],
    responses=responses(404),
    tags=["events"],
    openapi_extra=OPTIONAL_AUTH,
)
def list_event_attachments(
    event_id: uuid.UUID, member: EventReader, uow: OptionalUowDep
) -> Page[AttachmentOut]:
    """The documents the event lists (programme, rules), for anyone who may see the event (a
    short list: answered whole)."""
    return Page[AttachmentOut].whole(
        _attachment_out(event_id, a) for a in attachments.list_attachments(uow, event_id)
    )


@router.post(
    "/events/{event_id}/attachments",
    response_model=AttachmentOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 422),
    tags=["events"],
)
def add_event_attachment(
    event_id: uuid.UUID, body: AttachmentIn, member: EventManager, uow: UowDep
) -> AttachmentOut:
    """List an uploaded document (purpose `attachment`) on the event (owners and moderators);
    the file then stays as long as the event lists it."""
    attachment, media = attachments.add_attachment(
        uow,
        event_id,
        media_id=body.media_id,
        title=body.title,
        position=body.position,
        actor=member.user_id,
    )
    listed = attachments.Listed(
        attachment.id,
        attachment.title,
        attachment.position,
        media.content_type,
        media.size_bytes,
        media.filename,
        attachment.created_at,
    )
    return _attachment_out(event_id, listed)


@router.delete(
    "/events/{event_id}/attachments/{attachment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
    tags=["events"],
)
def remove_event_attachment(
    event_id: uuid.UUID, attachment_id: uuid.UUID, member: EventManager, uow: UowDep
) -> None:
    """Stop listing a document (owners and moderators); the file goes at the media cleanup
    after its grace period unless something else keeps it."""
    attachments.remove_attachment(uow, event_id, attachment_id, member.user_id)


@router.get(
    "/events/{event_id}/attachments/{attachment_id}/download",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "Redirect to a short-lived download link of the file"},
        **responses(404),
    },
    tags=["events"],
    openapi_extra=OPTIONAL_AUTH,
)
def download_event_attachment(
    event_id: uuid.UUID,
    attachment_id: uuid.UUID,
    member: EventReader,
    uow: OptionalUowDep,
    storage: StorageDep,
    state: StateDep,
) -> RedirectResponse:
    """One of the event's documents, for anyone who may see the event: a redirect to a
    presigned link answered as a download under the file's name."""
    key, content_type, filename, title = attachments.attachment_object(uow, event_id, attachment_id)
    ttl = state.settings.media_url_ttl_s
    url = storage.presign(key, ttl, download_as=_download_name(title, filename, content_type))
    return redirect_to(url, ttl)
