"""Image variants made with Pillow: orientation applied, every piece of metadata left behind.

Variants (all WebP, never upscaled):

=========  ====================================  =================================
name       shape                                 largest size
=========  ====================================  =================================
thumbnail  centre crop to a square               256 x 256
card       centre crop to 16:9                   800 x 450
cover      the whole picture, aspect kept        fits in 1920 x 1080
=========  ====================================  =================================

An animated GIF (or WebP) gives its first frame. Outputs are new images built from pixels only:
no EXIF (GPS, camera, orientation), XMP or ICC profile is copied.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from domain.media.content import IMAGE_TYPES
from domain.media.errors import ImageTooLarge, InvalidImage
from domain.media.models import VariantName

OUTPUT_TYPE = "image/webp"
OUTPUT_EXT = "webp"
WEBP_QUALITY = 82

# name -> (box width, box height, crop to the box's aspect ratio)
VARIANTS: dict[VariantName, tuple[int, int, bool]] = {
    VariantName.THUMBNAIL: (256, 256, True),
    VariantName.CARD: (800, 450, True),
    VariantName.COVER: (1920, 1080, False),
}
_LARGEST_BOX = (1920, 1920)  # JPEG draft: decode at the smallest scale still >= every variant
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Rendition:
    name: VariantName
    data: bytes
    width: int
    height: int
    content_type: str = OUTPUT_TYPE
    ext: str = OUTPUT_EXT


@dataclass(frozen=True)
class ProcessedImage:
    width: int  # of the picture as shown, orientation applied
    height: int
    variants: list[Rendition]


def _target_size(width: int, height: int, box: tuple[int, int, bool]) -> tuple[int, int]:
    box_w, box_h, crop = box
    if crop:  # the box's aspect ratio, as large as the picture allows, at most the box
        scale = min(1.0, width / box_w, height / box_h)
        return max(1, round(box_w * scale)), max(1, round(box_h * scale))
    scale = min(1.0, box_w / width, box_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _render(picture: Image.Image, box: tuple[int, int, bool]) -> Image.Image:
    size = _target_size(picture.width, picture.height, box)
    if box[2]:
        return ImageOps.fit(picture, size, Image.Resampling.LANCZOS)
    return picture.resize(size, Image.Resampling.LANCZOS)


def _pixels_only(picture: Image.Image) -> Image.Image:
    """A new image with the same pixels and nothing else (no info, no EXIF)."""
    mode = (
        "RGBA" if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info else "RGB"
    )
    converted = picture.convert(mode)
    return Image.frombytes(mode, converted.size, converted.tobytes())


def open_checked(file: BinaryIO, content_type: str, max_pixels: int) -> Image.Image:
    """Open an upload as the detected format only, refusing more than ``max_pixels`` before any
    pixel is decoded (the header's dimensions are read first)."""
    # Pillow's own guard, made strict: its warning above the limit becomes an error, like its
    # DecompressionBombError above twice the limit. Both are process-wide; every thread sets
    # the same values (they come from the settings), and setting them again changes nothing.
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    try:
        image = Image.open(file, formats=[IMAGE_TYPES[content_type]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage(
            f"The content is not a decodable {content_type} image",
            details={"content_type": content_type},
        ) from None
    if image.width * image.height > max_pixels:
        image.close()
        raise _too_large(image.size, max_pixels)
    return image


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> ImageTooLarge:
    details: dict[str, int] = {"max_pixels": max_pixels}
    if size:
        details |= {"width": size[0], "height": size[1]}
    return ImageTooLarge(
        f"The image has more than {max_pixels} pixels (a decompression bomb?)", details=details
    )


def process_image(file: BinaryIO, content_type: str, max_pixels: int) -> ProcessedImage:
    """Decode (first frame), orient, and render every variant; raises InvalidImage or
    ImageTooLarge."""
    image = open_checked(file, content_type, max_pixels)
    try:
        width, height = image.size
        if image.getexif().get(ExifTags.Base.Orientation, 1) in _ROTATED:
            width, height = height, width
        if image.format == "JPEG":
            image.draft("RGB", _LARGEST_BOX)  # decode at 1/2, 1/4 ... scale when big enough
        image.seek(0)
        image.load()
        picture = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large((width, height), max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage(
            "The image is truncated or corrupt", details={"content_type": content_type}
        ) from None
    finally:
        image.close()
    clean = _pixels_only(picture)
    variants = []
    for name, box in VARIANTS.items():
        rendered = _render(clean, box)
        buffer = io.BytesIO()
        rendered.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
        variants.append(Rendition(name, buffer.getvalue(), rendered.width, rendered.height))
    return ProcessedImage(width, height, variants)
