"""The parts of CI's render check (diagrams/render/check.py) that need no browser.

CI runs the check itself (``diagrams/render/check.sh --self-test`` in .ci/run),
with mermaid-cli and Chromium; these tests pin its reading of pictures: the
PNG decoder under every filter, the ink count and the screenshot size.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[1] / "diagrams" / "render" / "check.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_check", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_check", module)
    spec.loader.exec_module(module)
    return module


check = _module()


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, previous: bytes, kind: int, bpp: int) -> bytes:
    """``row`` as a PNG encoder writes it under filter ``kind`` (the inverse of decoding)."""
    out = bytearray()
    for i, value in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        predictor = (0, a, b, (a + b) >> 1, _paeth(a, b, c))[kind]
        out.append((value - predictor) & 0xFF)
    return bytes(out)


def _png(rows: list[bytes], width: int, color: int, bpp: int) -> bytes:
    previous = bytes(width * bpp)
    raw = bytearray()
    for y, row in enumerate(rows):
        kind = y % 5  # every filter, in turn
        raw += bytes([kind]) + _filtered(row, previous, kind, bpp)
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, len(rows), 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def _picture(width: int, height: int, ink: set[tuple[int, int]]) -> list[bytes]:
    """White RGB rows with a gradient of dark pixels at ``ink`` (x, y)."""
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            row += bytes((x * 7 % 60, y * 5 % 60, 30)) if (x, y) in ink else b"\xff\xff\xff"
        rows.append(bytes(row))
    return rows


def test_png_rows_undo_every_filter() -> None:
    rows = _picture(9, 10, {(x, y) for x in range(9) for y in range(10) if (x * y) % 3 == 0})
    width, height, bpp, decoded = check.png_rows(_png(rows, 9, color=2, bpp=3))
    assert (width, height, bpp) == (9, 10, 3)
    assert decoded == rows


def test_inked_share_counts_pixels_away_from_the_background() -> None:
    ink = {(1, 1), (2, 1), (7, 3)}
    data = _png(_picture(10, 5, ink), 10, color=2, bpp=3)
    assert check.inked_share(data) == pytest.approx(3 / 50)
    blank = _png(_picture(10, 5, set()), 10, color=2, bpp=3)
    assert check.inked_share(blank) == 0


def test_a_pale_antialiasing_tint_is_not_ink() -> None:
    rows = [b"\xff\xff\xff" * 4, b"\xff\xff\xff" + b"\xf0\xf0\xf0" * 3]
    assert check.inked_share(_png(rows, 4, color=2, bpp=3)) == 0


def test_rgba_alpha_is_not_ink() -> None:
    rows = [b"\xff\xff\xff\xff" * 3, b"\xff\xff\xff\x00" * 2 + b"\x00\x00\x00\xff"]
    assert check.inked_share(_png(rows, 3, color=6, bpp=4)) == pytest.approx(1 / 6)


def test_an_interlaced_or_16_bit_png_is_refused() -> None:
    data = bytearray(_png([b"\xff\xff\xff"], 1, color=2, bpp=3))
    data[24] = 16  # bit depth, in IHDR
    with pytest.raises(check.Failure, match="unsupported PNG"):
        check.png_rows(bytes(data))


def _svg_root(attributes: str) -> object:
    import xml.etree.ElementTree as ElementTree

    return ElementTree.fromstring(f'<svg xmlns="http://www.w3.org/2000/svg" {attributes}/>')


@pytest.mark.parametrize(
    ("attributes", "size"),
    [
        ('width="300pt" height="150pt" viewBox="0 0 300 150"', (416, 216)),
        ('width="100%" viewBox="-8 -8 770 904"', (786, 920)),
        ('width="10" height="10"', (200, 200)),
        ('width="9000px" height="20"', (2400, 200)),
    ],
)
def test_the_screenshot_fits_the_picture(attributes: str, size: tuple[int, int]) -> None:
    assert check.picture_size(_svg_root(attributes)) == size


def test_a_broken_svg_is_refused_before_any_browser(tmp_path: Path) -> None:
    path = tmp_path / "broken.svg"
    path.write_text(check.SELF_TEST["broken-comment.svg"][0])
    with pytest.raises(check.Failure, match="not well-formed XML"):
        check.parse_svg(path)
