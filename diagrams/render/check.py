"""Render the diagrams as a person would see them, and fail on anything that does not show.

For every ``diagrams/*.mmd``: mermaid-cli (``mmdc``, the pinned npm package in
this folder, driving Debian's Chromium through ``puppeteer.json``) renders it
to SVG. Every committed ``diagrams/*.svg`` and every one of those renderings is
then checked the way a browser would see it:

1. it is well-formed XML with an ``svg`` root (Python's parser);
2. headless Chromium opens it as a document (``--dump-dom``) without a
   ``parsererror`` (what Chromium shows instead of a broken SVG);
3. headless Chromium draws it (``--screenshot``) and the picture is not blank:
   enough pixels differ from the background.

The screenshots are kept in ``--out`` (default ``diagrams/render/out``) for a
person to look at. ``--self-test`` first shows that the checks catch a broken
SVG comment, a blank SVG and a Mermaid syntax error. Exit status 0 when every
picture shows, 1 otherwise. Standard library only; run by ``check.sh``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIAGRAMS = HERE.parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
TIMEOUT = 120  # seconds, for one mmdc or chromium run
#: A picture shows when at least this share of its pixels is not the background.
MIN_INK = 0.002
#: A channel differing from the background by more than this is ink.
INK_DELTA = 48
#: Screenshot size bounds, in CSS pixels.
MIN_SIDE, MAX_SIDE = 200, 2400


class Failure(Exception):
    """A picture that does not show, and why."""


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise Failure(f"{argv[0]} did not finish within {TIMEOUT} s") from err


# --- mermaid-cli -----------------------------------------------------------------------


def mmdc_path() -> Path:
    path = HERE / "node_modules" / ".bin" / "mmdc"
    if not path.exists():
        raise Failure(f"{path} is missing: run diagrams/render/check.sh (it installs it)")
    return path


def render_mermaid(source: Path, target: Path) -> None:
    """``mmdc`` renders ``source`` to ``target`` (SVG), or :class:`Failure`."""
    done = _run(
        [
            str(mmdc_path()),
            "-q",
            "-p",
            str(HERE / "puppeteer.json"),
            "-i",
            str(source),
            "-o",
            str(target),
        ]
    )
    if done.returncode != 0 or not target.exists():
        message = (done.stderr or done.stdout).strip().splitlines()
        raise Failure(f"mmdc failed ({done.returncode}): {' / '.join(message[:4])}")


# --- what Chromium makes of an SVG -----------------------------------------------------


def parse_svg(path: Path) -> ElementTree.Element:
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314 - the project's own files
    except ElementTree.ParseError as err:
        raise Failure(f"not well-formed XML: {err}") from None
    if root.tag != "{http://www.w3.org/2000/svg}svg":
        raise Failure(f"root element is {root.tag!r}, not svg")
    return root


def _length(value: str | None) -> float | None:
    match = re.fullmatch(r"\s*([0-9.]+)\s*(px|pt)?\s*", value or "")
    if not match:
        return None
    return float(match.group(1)) * (4 / 3 if match.group(2) == "pt" else 1)


def picture_size(root: ElementTree.Element) -> tuple[int, int]:
    """The SVG's size in CSS pixels (width/height, else the viewBox), within bounds."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width is None or height is None:
        box = (root.get("viewBox") or "").replace(",", " ").split()
        if len(box) == 4:
            width, height = float(box[2]), float(box[3])
    width, height = width or 800, height or 600

    def bound(side: float) -> int:
        return int(min(max(side + 16, MIN_SIDE), MAX_SIDE))

    return bound(width), bound(height)


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise Failure("chromium is not on PATH (apt-get install chromium)")
    return found


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args])


def load_in_chromium(path: Path, screenshot: Path, profile: Path) -> float:
    """Open ``path`` in headless Chromium; return the inked share of its screenshot."""
    width, height = picture_size(parse_svg(path))
    screenshot.unlink(missing_ok=True)
    # One run: the document as Chromium parsed it on stdout, and the picture it drew.
    shown = _chromium(
        profile,
        "--dump-dom",
        f"--screenshot={screenshot}",
        f"--window-size={width},{height}",
        path.resolve().as_uri(),
    )
    if shown.returncode != 0 or not screenshot.exists():
        raise Failure(f"chromium failed ({shown.returncode}): {shown.stderr[-300:]}")
    dom = shown.stdout
    if "parsererror" in dom or not re.match(r"\s*(<!DOCTYPE[^>]*>\s*)?<svg\b", dom):
        text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
        raise Failure(f"chromium does not show it as SVG: {text[:300]}")
    ink = inked_share(screenshot.read_bytes())
    if ink < MIN_INK:
        raise Failure(f"blank picture: {ink:.4%} of the pixels differ from the background")
    return ink


# --- PNG pixels (the screenshot), with the standard library ----------------------------


def png_rows(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the unfiltered rows of an 8-bit PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure("the screenshot is not a PNG")
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise Failure(f"unsupported PNG (depth {depth}, color {color}, interlace {interlace})")
    raw = zlib.decompress(b"".join(chunks))
    bpp, stride = channels, width * channels + 1
    rows: list[bytes] = []
    previous = bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * stride], bytearray(raw[y * stride + 1 : (y + 1) * stride])
        if kind == 1:
            for i in range(bpp, len(line)):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(len(line)):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(len(line)):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise Failure(f"bad PNG filter {kind} in row {y}")
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


def inked_share(data: bytes) -> float:
    """The share of pixels that differ from the background (the top-left pixel).

    A pixel is ink when one of its colour channels is more than :data:`INK_DELTA`
    away from the background's (alpha is not colour).
    """
    width, height, bpp, rows = png_rows(data)
    channels = 1 if bpp <= 2 else 3
    background = rows[0][:channels]
    # Per channel, a table mapping each value to 1 (ink) or 0; a row's ink mask is
    # the OR of its channels' translated bytes, read as one integer.
    tables = [
        bytes(int(abs(value - background[k]) > INK_DELTA) for value in range(256))
        for k in range(channels)
    ]
    inked = 0
    for row in rows:
        mask = 0
        for k in range(channels):
            mask |= int.from_bytes(row[k::bpp].translate(tables[k]), "big")
        inked += mask.bit_count()
    return inked / (width * height)


# --- the run ---------------------------------------------------------------------------


def check_all(diagrams: Path, out: Path) -> list[str]:
    """Check every picture under ``diagrams``; return the failures, one line each."""
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    pictures: list[Path] = sorted(diagrams.glob("*.svg"))
    with tempfile.TemporaryDirectory(prefix="lifecycle-render-") as tmp:
        profile = Path(tmp) / "chromium"
        for source in sorted(diagrams.glob("*.mmd")):
            target = out / f"{source.stem}.mermaid.svg"
            try:
                render_mermaid(source, target)
            except Failure as err:
                failures.append(f"{source}: {err}")
                continue
            print(f"rendered {source.name} -> {target}")
            pictures.append(target)
        if not pictures:
            failures.append(f"{diagrams}: no .svg or .mmd file to check")
        for picture in pictures:
            screenshot = out / f"{picture.stem}.png"
            try:
                ink = load_in_chromium(picture, screenshot, profile)
            except Failure as err:
                failures.append(f"{picture}: {err}")
                continue
            print(f"shown    {picture.name} -> {screenshot} ({ink:.1%} inked)")
    return failures


#: The self-test's cases: a file, and a word that the failure it causes must contain.
SELF_TEST = {
    "broken-comment.svg": (
        '<?xml version="1.0"?>\n<!-- regenerate with: lifecycle diagram --write -->\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        '<rect width="80" height="80" fill="black"/></svg>\n',
        "not well-formed XML",
    ),
    "blank.svg": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"></svg>\n',
        "blank picture",
    ),
    "syntax-error.mmd": ("stateDiagram-v2\n  A --> B: ok\n  --> -->\n", "mmdc failed"),
}


def self_test() -> list[str]:
    """Show that each check catches what it is for; return the cases it did not catch."""
    with tempfile.TemporaryDirectory(prefix="lifecycle-render-self-test-") as tmp:
        folder = Path(tmp)
        for name, (text, _) in SELF_TEST.items():
            (folder / name).write_text(text, encoding="utf-8")
        failures = check_all(folder, folder / "out")
        # The broken comment also fails in Chromium itself, without the XML check first.
        with_chromium = _chromium(
            folder / "chromium", "--dump-dom", (folder / "broken-comment.svg").as_uri()
        )
    missed = [
        f"self-test: {name} was not refused for {word!r}"
        for name, (_, word) in SELF_TEST.items()
        if not any(line.startswith(str(folder / name)) and word in line for line in failures)
    ]
    if "parsererror" not in with_chromium.stdout:
        missed.append("self-test: chromium showed the broken comment without a parsererror")
    for line in failures:
        print(f"refused  {line.removeprefix(str(folder) + '/')}")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--diagrams", type=Path, default=DIAGRAMS, help="default: diagrams/")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="screenshots go here")
    parser.add_argument("--self-test", action="store_true", help="first check the checks")
    args = parser.parse_args(argv)
    problems = self_test() if args.self_test else []
    problems += check_all(args.diagrams, args.out)
    for line in problems:
        print(f"FAILED   {line}", file=sys.stderr)
    print(f"render check: {'failed' if problems else 'every picture shows'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
