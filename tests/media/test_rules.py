"""Rules of the media domain, without servers: type detection, variant sizes, pixel limits."""

from __future__ import annotations

import io

import pytest

from domain.media.content import Limits, detect
from domain.media.errors import ImageTooLarge, InvalidImage
from domain.media.images import VARIANTS, _target_size, process_image
from domain.media.models import VariantName
from tests.factories import image_bytes
from tests.media.images import pdf_bytes, png_declaring


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("WEBP"), "image/webp"),
        (image_bytes("GIF"), "image/gif"),
        (pdf_bytes(), "application/pdf"),
        (image_bytes("BMP"), None),
        (b"%!PS-Adobe-3.0\n", None),
        (b"<?xml version='1.0'?><svg/>", None),
        (b"", None),
    ],
    ids=["jpeg", "png", "webp", "gif", "pdf", "bmp", "postscript", "svg", "empty"],
)
def test_detect_reads_the_magic_bytes(data: bytes, expected: str | None) -> None:
    assert detect(data[:2048]) == expected


@pytest.mark.parametrize(
    ("size", "variant", "expected"),
    [
        ((4000, 3000), VariantName.THUMBNAIL, (256, 256)),
        ((4000, 3000), VariantName.CARD, (800, 450)),
        ((4000, 3000), VariantName.COVER, (1440, 1080)),
        ((3000, 4000), VariantName.COVER, (810, 1080)),
        ((100, 50), VariantName.THUMBNAIL, (50, 50)),
        ((100, 50), VariantName.CARD, (89, 50)),
        ((100, 50), VariantName.COVER, (100, 50)),
        ((1, 1), VariantName.CARD, (1, 1)),
    ],
)
def test_variant_sizes_never_upscale(size, variant, expected) -> None:
    assert _target_size(*size, VARIANTS[variant]) == expected


def test_limits_by_type() -> None:
    limits = Limits(image_bytes=5, document_bytes=10, max_image_pixels=100)
    assert limits.bytes_for("image/gif") == 5
    assert limits.bytes_for("application/pdf") == 10
    assert limits.largest == 10


def test_pixels_over_the_limit_are_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge) as refused:
        process_image(io.BytesIO(png_declaring(101, 100)), "image/png", max_pixels=10_000)
    assert refused.value.details == {"max_pixels": 10_000}  # Pillow's own (now strict) guard
    exact = process_image(io.BytesIO(image_bytes("PNG", (100, 100))), "image/png", 10_000)
    assert (exact.width, exact.height) == (100, 100)


def test_an_image_of_another_format_than_detected_is_invalid() -> None:
    with pytest.raises(InvalidImage):
        process_image(io.BytesIO(image_bytes("PNG")), "image/jpeg", max_pixels=10**8)
