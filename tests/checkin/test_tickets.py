"""Ticket codes and QR images, without I/O.

No QR-decoding library is installed, so the images are read back by the small decoder below
(PNG through zlib, then format bits, unmasking, block de-interleaving and byte mode, enough for
the clean, low-version symbols the service renders). It shares no code with segno.
"""

from __future__ import annotations

import base64
import struct
import uuid
import xml.etree.ElementTree as ET
import zlib

import pytest

from core.settings import Settings
from domain.checkin import tickets
from domain.checkin.tickets import InvalidTicketCode

KEY = b"test-key-0123456789"
SECRET = "s3cr3t-ticket-secret-abc"


def _swap(code: str, index: int) -> str:
    """``code`` with one character changed to another alphabet character."""
    replacement = "A" if code[index] != "A" else "B"
    return code[:index] + replacement + code[index + 1 :]


# --- codes ---------------------------------------------------------------------------------------


def test_code_round_trip() -> None:
    registration_id = uuid.uuid4()
    code = tickets.issue(KEY, registration_id, SECRET)
    assert len(code) == 44
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tickets.registration_id_of(code)[0] == registration_id
    tickets.verify(KEY, code, registration_id, SECRET)
    assert tickets.issue(KEY, registration_id, SECRET) == code, "codes are deterministic"


def test_codes_differ_by_registration_secret_and_key() -> None:
    registration_id = uuid.uuid4()
    codes = {
        tickets.issue(KEY, registration_id, SECRET),
        tickets.issue(KEY, uuid.uuid4(), SECRET),
        tickets.issue(KEY, registration_id, SECRET + "x"),
        tickets.issue(b"another-key", registration_id, SECRET),
    }
    assert len(codes) == 4


@pytest.mark.parametrize("index", [0, 1, 10, 16, 17, 22, 30, 43])
def test_tampered_code_is_invalid(index: int) -> None:
    registration_id = uuid.uuid4()
    code = tickets.issue(KEY, registration_id, SECRET)
    with pytest.raises(InvalidTicketCode):
        tickets.verify(KEY, _swap(code, index), registration_id, SECRET)


def test_code_with_another_registrations_id_is_invalid() -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    raw = base64.urlsafe_b64decode(tickets.issue(KEY, mine, SECRET))
    forged = base64.urlsafe_b64encode(raw[:1] + theirs.bytes + raw[17:]).decode()
    assert tickets.registration_id_of(forged)[0] == theirs
    with pytest.raises(InvalidTicketCode):
        tickets.verify(KEY, forged, theirs, SECRET)
    with pytest.raises(InvalidTicketCode):
        tickets.verify(KEY, forged, theirs, "their-own-secret")


def test_code_signed_with_another_key_or_secret_is_invalid() -> None:
    registration_id = uuid.uuid4()
    with pytest.raises(InvalidTicketCode):
        tickets.verify(
            KEY, tickets.issue(b"other", registration_id, SECRET), registration_id, SECRET
        )
    with pytest.raises(InvalidTicketCode):
        tickets.verify(KEY, tickets.issue(KEY, registration_id, "guess"), registration_id, SECRET)


def test_code_must_match_the_registration_it_is_checked_against() -> None:
    registration_id = uuid.uuid4()
    code = tickets.issue(KEY, registration_id, SECRET)
    with pytest.raises(InvalidTicketCode):
        tickets.verify(KEY, code, uuid.uuid4(), SECRET)


def test_wrong_version_is_invalid() -> None:
    registration_id = uuid.uuid4()
    raw = base64.urlsafe_b64decode(tickets.issue(KEY, registration_id, SECRET))
    other = base64.urlsafe_b64encode(bytes([2]) + raw[1:]).decode()
    with pytest.raises(InvalidTicketCode):
        tickets.registration_id_of(other)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "x",
        "A" * 43,
        "A" * 45,
        "A" * 88,
        "!" * 44,
        "é" * 44,
        "ATJw7tBsNUFYv5YtNOmKZilZUkiFVnlz5t8PfmrDXOi=",
        "ATJw7tBsNUFYv5YtNOmKZilZUkiFVnlz5t8PfmrDXO+/",  # the standard alphabet, not URL-safe
        " ATJw7tBsNUFYv5YtNOmKZilZUkiFVnlz5t8PfmrDXO",
        "\x00" * 44,
    ],
)
def test_garbled_codes_are_invalid(garbage: str) -> None:
    with pytest.raises(InvalidTicketCode) as raised:
        tickets.registration_id_of(garbage)
    assert raised.value.code == "invalid_code"


def test_the_settings_carry_a_ticket_key() -> None:
    key = Settings().ticket_signing_key
    assert key.get_secret_value()
    assert key.get_secret_value() not in repr(Settings())


# --- QR images -----------------------------------------------------------------------------------


def test_png_decodes_back_to_the_code() -> None:
    code = tickets.issue(KEY, uuid.uuid4(), SECRET)
    png = tickets.qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    modules, scale, border = _modules(_png_pixels(png))
    assert scale >= 4 and border >= 4, "big enough for a phone camera, with a quiet zone"
    content, level = _decode_qr(modules)
    assert content == code.encode()
    assert level == "M"


def test_svg_is_xml_and_encodes_the_code() -> None:
    code = tickets.issue(KEY, uuid.uuid4(), SECRET)
    svg = tickets.qr_svg(code)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == root.get("height")
    assert _decode_qr(_svg_modules(root))[0] == code.encode()


# --- a minimal PNG reader and QR decoder ---------------------------------------------------------


def _png_pixels(png: bytes) -> list[list[bool]]:
    """Rows of pixels, True for dark. Greyscale and palette PNGs, not interlaced."""
    pos, idat, palette = 8, b"", None
    width = height = depth = color = 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert interlace == 0 and color in (0, 3)
        elif kind == b"PLTE":
            palette = [data[i : i + 3] for i in range(0, len(data), 3)]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (width * depth + 7) // 8
    bpp = max(1, depth // 8)
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        row = []
        for x in range(width):
            bit = x * depth
            value = (line[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
            if color == 3:
                value = sum(palette[value]) // 3
                row.append(value < 128)
            else:
                row.append(value < (1 << depth) // 2)
        rows.append(row)
    return rows


def _modules(pixels: list[list[bool]]) -> tuple[list[list[bool]], int, int]:
    """The module matrix of an image: the finder pattern gives the origin and the scale."""
    top = next(y for y, row in enumerate(pixels) if any(row))
    left = pixels[top].index(True)
    run = next(i for i in range(left, len(pixels[top])) if not pixels[top][i]) - left
    scale = run // 7
    size = (len(pixels[top]) - 2 * left) // scale
    modules = [
        [pixels[top + r * scale + scale // 2][left + c * scale + scale // 2] for c in range(size)]
        for r in range(size)
    ]
    return modules, scale, left // scale


def _svg_modules(root: ET.Element) -> list[list[bool]]:
    """Modules from segno's SVG path: horizontal runs (``h``) of dark modules, stroked at their
    vertical centre, in a ``scale()``-transformed path."""
    import re

    path = root.find("{http://www.w3.org/2000/svg}path")
    scale = int(re.fullmatch(r"scale\((\d+)\)", path.get("transform")).group(1))
    size = int(root.get("width")) // scale
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([MmHhVv])\s*(-?[\d.]+)(?:[ ,](-?[\d.]+))?", path.get("d")):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        elif op == "h":
            for i in range(int(float(a))):
                grid[int(y)][int(x) + i] = True
            x += float(a)
        else:
            raise AssertionError(f"unexpected path operator {op}")
    border = min(c for row in grid for c, dark in enumerate(row) if dark)
    return [row[border : size - border] for row in grid[border : size - border]]


# Per version (1-6), error correction level M: raw codewords, ECC per block, blocks.
_M_BLOCKS = {
    1: (26, 10, 1),
    2: (44, 16, 1),
    3: (70, 26, 1),
    4: (100, 18, 2),
    5: (134, 24, 2),
    6: (172, 16, 4),
}
_LEVELS = {0: "M", 1: "L", 2: "H", 3: "Q"}
_MASKS = [
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
]


def _decode_qr(m: list[list[bool]]) -> tuple[bytes, str]:
    """Byte-mode content and error correction level of a clean QR symbol, versions 1-6."""
    size = len(m)
    version = (size - 17) // 4
    assert 1 <= version <= 6 and size == 17 + 4 * version
    # Format information, first copy (around the top-left finder), BCH bits ignored.
    positions = [(r, 8) for r in range(6)] + [(7, 8), (8, 8), (8, 7)]
    positions += [(8, 14 - i) for i in range(9, 15)]
    fmt = sum(m[r][c] << i for i, (r, c) in enumerate(positions)) ^ 0x5412
    level, mask = _LEVELS[fmt >> 13], _MASKS[(fmt >> 10) & 7]
    align = [] if version == 1 else [(size - 7, size - 7)]

    def function(r: int, c: int) -> bool:
        return (
            (r < 9 and c < 9)
            or (r < 9 and c >= size - 8)
            or (r >= size - 8 and c < 9)
            or r == 6
            or c == 6
            or any(abs(r - ar) <= 2 and abs(c - ac) <= 2 for ar, ac in align)
        )

    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            y = size - 1 - vert if upward else vert
            for x in (right, right - 1):
                if not function(y, x):
                    bits.append(int(m[y][x] ^ mask(x, y)))
        right -= 2
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    raw, ecc, blocks = _M_BLOCKS[version]
    assert level == "M", "the decoder knows the block layout of level M only"
    short = blocks - raw % blocks
    lengths = [raw // blocks - ecc + (j >= short) for j in range(blocks)]
    data: list[list[int]] = [[] for _ in range(blocks)]
    it = iter(codewords)
    for i in range(max(lengths)):
        for j in range(blocks):
            if i < lengths[j]:
                data[j].append(next(it))
    stream = "".join(f"{b:08b}" for block in data for b in block)
    assert stream[:4] == "0100", "byte mode"
    count = int(stream[4:12], 2)
    return bytes(int(stream[12 + 8 * i : 20 + 8 * i], 2) for i in range(count)), level
