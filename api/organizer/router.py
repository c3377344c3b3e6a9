"""Organizers' public pages: who organizes events, for everyone (no sign-in needed)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query
from fastapi.responses import RedirectResponse

from api.deps import OptionalUowDep, StateDep
from api.errors import responses
from api.event.schemas import OrganizerOut
from api.media.router import StorageDep, presigned, redirect_to
from domain.errors import NotFound
from domain.media.models import VariantName
from domain.organization import profiles

router = APIRouter(tags=["organizers"])
OPEN = {"security": [{}, {"HTTPBearer": []}]}
Slug = Path(min_length=1, max_length=64, description="The organization's address name")


@router.get(
    "/organizers/{slug}",
    response_model=OrganizerOut,
    responses=responses(404),
    openapi_extra=OPEN,
)
def organizer(uow: OptionalUowDep, slug: str = Slug) -> OrganizerOut:
    """An organization's public profile: name, address name, description, logo, and where its
    published public events are listed (`GET /events?organization_id=`)."""
    return OrganizerOut.of(profiles.by_slug(uow, slug))


@router.get(
    "/organizers/{slug}/logo",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "Redirect to a presigned URL of the variant"},
        **responses(404),
    },
    openapi_extra=OPEN,
)
def organizer_logo(
    uow: OptionalUowDep,
    storage: StorageDep,
    state: StateDep,
    slug: str = Slug,
    variant: VariantName = Query(default=VariantName.THUMBNAIL),
) -> RedirectResponse:
    """The organizer's logo, for anyone: a redirect to a short-lived presigned URL."""
    found = profiles.logo_variant(uow, profiles.by_slug(uow, slug).id, variant.value)
    if found is None:
        raise NotFound("The organizer has no logo (in this variant)")
    ttl = state.settings.media_url_ttl_s
    return redirect_to(presigned(storage, found[0], ttl)[0], ttl)
