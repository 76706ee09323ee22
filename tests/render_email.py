"""Render an HTML file in headless Chromium: a PNG screenshot and the DOM after scripts ran.
Also a PNG decoder (standard library only) and an HTML reader, to check what was rendered."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Set in CI: there a missing browser fails the rendering tests instead of skipping them.
REQUIRE_ENV = "MONITOR_REQUIRE_CHROMIUM"
TIMEOUT = 30  # seconds; a hung browser fails the test rather than the whole run
WINDOW = (900, 1200)


def chromium_args(profile: Path) -> list[str]:
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, capture_output=True, timeout=TIMEOUT, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"chromium exited {result.returncode}: {result.stderr.decode(errors='replace')[-2000:]}"
        )
    return result


def screenshot(html: Path, png: Path, profile: Path) -> bytes:
    """The page as Chromium draws it, WINDOW pixels wide and high."""
    width, height = WINDOW
    _run(
        [
            *chromium_args(profile),
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
    )
    return png.read_bytes()


def dump_dom(html: Path, profile: Path) -> str:
    """The DOM serialised after the page loaded and its scripts (had there been any) ran."""
    return _run([*chromium_args(profile), "--dump-dom", html.resolve().as_uri()]).stdout.decode()


def chromium_missing_reason() -> str | None:
    """Why the rendering tests cannot run here, or None when they can."""
    if CHROMIUM.exists():
        return None
    reason = f"{CHROMIUM} is not installed (Debian package `chromium`)"
    if os.environ.get(REQUIRE_ENV):
        raise AssertionError(f"{reason}, and {REQUIRE_ENV} is set")
    return reason


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: tuple[bytes, ...]  # unfiltered scanlines
    channels: int  # bytes per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA

    def non_white(self) -> int:
        """Pixels with any colour channel visibly darker than white (alpha ignored)."""
        colour = 1 if self.channels <= 2 else 3
        count = 0
        for row in self.rows:
            for x in range(0, len(row), self.channels):
                if min(row[x : x + colour]) < 0xF0:
                    count += 1
        return count


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> bytes per pixel at 8 bits per sample


def decode_png(data: bytes) -> Image:
    """Decode an 8-bit, non-interlaced, non-palette PNG (what Chromium writes)."""
    assert data.startswith(_PNG_SIGNATURE), "not a PNG"
    pos = len(_PNG_SIGNATURE)
    header = b""
    compressed = bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in _CHANNELS or interlace:
        raise AssertionError(
            f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}"
        )
    bpp = _CHANNELS[colour_type]
    raw = zlib.decompress(bytes(compressed))
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, bpp)
        rows.append(bytes(line))
        previous = line
    return Image(width, height, tuple(rows), bpp)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        if kind == 0:
            continue
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            upper_left = previous[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _paeth(left, up, upper_left)) & 0xFF
        else:
            raise AssertionError(f"unknown PNG filter type {kind}")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


class Page(HTMLParser):
    """What a serialised DOM holds: its elements, their attributes, its text and its title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        else:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def elements(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def read_page(dom: str) -> Page:
    page = Page()
    page.feed(dom)
    page.close()
    return page
