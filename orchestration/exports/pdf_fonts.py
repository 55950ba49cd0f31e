"""Font subsets for the PDFs, made once per process instead of once per font of every PDF.

Without libharfbuzz-subset (a system library no PyPI wheel ships loadable by name), WeasyPrint
subsets every embedded font with fontTools, which decompiles and compiles DejaVu Sans (6,000
glyphs) each time: about 0.15 s of CPU per font, two or three fonts per PDF, over half of a
report run's CPU. This module replaces WeasyPrint's `Font._fonttools_subset` with one that

- keeps a fixed superset of glyphs (ASCII, Latin-1 and the punctuation our templates and numbers
  use) plus whatever a document uses beyond it, so most PDFs ask for the same glyph set;
- remembers each subset's bytes by (font bytes, glyph set, options): the next PDF that asks for
  the same set reuses them, whatever its text;
- subsets a miss with the same fontTools options as WeasyPrint, reading the font lazily (the GSUB
  and GPOS tables it drops are then never decompiled: half the time, same bytes);
- stamps the subset's `head.modified` with the time fontTools would have written (the run's
  SOURCE_DATE_EPOCH, see pdf_export.font_timestamps), so a reused subset is byte for byte the
  one a fresh process would make: the same report still gives the same PDF bytes.

What a reader sees does not change: glyphs are kept by id (retain_gids), the PDF's widths and
ToUnicode map still list only the glyphs the text uses; the extra glyphs only sit in the embedded
font program (a few kB per font).

The patch is tied to one WeasyPrint version (pinned in pyproject.toml): `install()` refuses any
other, since a changed `Font` could make it embed a wrong font. WeasyPrint with HarfBuzz-subset
available never calls `_fonttools_subset`, so there the patch is idle.
"""

from __future__ import annotations

import collections
import hashlib
import io
import struct
import threading
from dataclasses import dataclass

import weasyprint
from fontTools import subset as ft_subset
from fontTools.misc.timeTools import timestampNow
from fontTools.ttLib import TTFont, TTLibError
from fontTools.ttLib.sfnt import calcChecksum
from weasyprint.pdf import fonts as wp_fonts

WEASYPRINT_VERSION = "70.0"  # the version whose Font._fonttools_subset this replaces (see install)

# Printable ASCII, Latin-1 (names in the data), and the punctuation our templates and numbers use.
SUPERSET = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0xA0, 0x100)) + (
    "\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u2026"  # – — ‘ ’ “ ” • …
    "\u2212\u2264\u2265\u20ac\u2192"  # − ≤ ≥ € →
    "\ufffd"  # what pdf_export.display shows for a control character
)
CACHE_SIZE = 32  # subsets kept (each the size of one embedded font, tens of kB)


@dataclass
class SubsetStats:
    """What the cache did in this process (for tests and measurements)."""

    made: int = 0  # subsets computed with fontTools
    reused: int = 0  # subsets served from the cache


stats = SubsetStats()
_subsets: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
_superset_gids: dict[tuple[bytes, int], frozenset[int]] = {}
_lock = threading.Lock()


def install() -> None:
    """Replace WeasyPrint's fontTools subsetting with the cached one (idempotent)."""
    if weasyprint.__version__ != WEASYPRINT_VERSION:
        raise RuntimeError(
            f"orchestration.exports.pdf_fonts patches WeasyPrint {WEASYPRINT_VERSION}'s Font._fonttools_subset, "
            f"but WeasyPrint {weasyprint.__version__} is installed: check the patch against it, then update "
            "WEASYPRINT_VERSION and the pin in pyproject.toml")
    wp_fonts.Font._fonttools_subset = cached_fonttools_subset


def clear() -> None:
    with _lock:
        _subsets.clear()
        _superset_gids.clear()
    stats.made = stats.reused = 0


def cached_fonttools_subset(font, to_unicode, hinting) -> None:
    """Drop-in for weasyprint.pdf.fonts.Font._fonttools_subset (70.0): sets font.file_content
    to the font subset to the glyphs `to_unicode` lists (plus the superset)."""
    digest = hashlib.sha256(font.file_content).digest()
    gids = _superset(font, digest) | set(to_unicode)
    key = (digest, font.index, tuple(sorted(gids)), bool(hinting), bool(font.missing))
    with _lock:
        data = _subsets.get(key)
        if data is not None:
            _subsets.move_to_end(key)
            stats.reused += 1
    if data is None:
        data = _subset(font, gids, hinting)
        if data is None:
            return  # fontTools could not read it: embed the whole font, as WeasyPrint does
        with _lock:
            _subsets[key] = data
            while len(_subsets) > CACHE_SIZE:
                _subsets.popitem(last=False)
            stats.made += 1
    font.file_content = restamp(data, timestampNow())


def _superset(font, digest: bytes) -> frozenset[int]:
    """The glyph ids of SUPERSET's characters in this font (those it has)."""
    key = (digest, font.index)
    found = _superset_gids.get(key)
    if found is None:
        try:
            ttfont = TTFont(io.BytesIO(font.file_content), fontNumber=font.index, lazy=True)
            cmap = ttfont.getBestCmap() or {}
            found = frozenset(ttfont.getGlyphID(cmap[ord(c)]) for c in SUPERSET if ord(c) in cmap)
        except (TTLibError, KeyError, struct.error):
            found = frozenset()
        _superset_gids[key] = found
    return found


def _subset(font, gids: set[int], hinting) -> bytes | None:
    """WeasyPrint 70's fontTools subset (same options), with the font read lazily."""
    options = ft_subset.Options(
        retain_gids=True, passthrough_tables=True, ignore_missing_glyphs=True,
        hinting=hinting, desubroutinize=True, notdef_outline=bool(font.missing))
    options.drop_tables += ["GSUB", "GPOS", "SVG"]
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(gids=sorted(gids))
    try:
        ttfont = TTFont(io.BytesIO(font.file_content), fontNumber=font.index, lazy=True)
        subsetter.subset(ttfont)
        out = io.BytesIO()
        ttfont.save(out)
    except TTLibError as exception:
        wp_fonts.LOGGER.warning('Unable to subset "%s" with fontTools', font.family)
        wp_fonts.LOGGER.debug("Original exception:", exc_info=exception)
        return None
    return out.getvalue()


_HEAD_MODIFIED = 28  # offset of head.modified (LONGDATETIME, seconds since 1904)
_HEAD_ADJUSTMENT = 8  # offset of head.checkSumAdjustment


def restamp(data: bytes, modified: int) -> bytes:
    """The font file `data` with head.modified set to `modified` and its checksums made right,
    exactly as fontTools writes them when it saves the font at that time."""
    buf = bytearray(data)
    (tables,) = struct.unpack_from(">H", buf, 4)
    for i in range(tables):
        entry = 12 + 16 * i
        tag, _, offset, length = struct.unpack_from(">4sLLL", buf, entry)
        if tag == b"head":
            break
    else:
        return data
    if struct.unpack_from(">q", buf, offset + _HEAD_MODIFIED)[0] == modified:
        return data
    struct.pack_into(">q", buf, offset + _HEAD_MODIFIED, modified)
    struct.pack_into(">L", buf, offset + _HEAD_ADJUSTMENT, 0)
    struct.pack_into(">L", buf, entry + 4, calcChecksum(bytes(buf[offset:offset + length])))
    # The whole file's checksum (tables are 4-byte aligned and zero padded) with the adjustment 0.
    struct.pack_into(">L", buf, offset + _HEAD_ADJUSTMENT, (0xB1B0AFBA - calcChecksum(bytes(buf))) & 0xFFFFFFFF)
    return bytes(buf)
