"""Make any outside text safe to keep: the one cleaner applied at every edge.

Text reaches mlsd-bot from CLI arguments, input files, the terminal, the browser
and its API. Before it touches the state, SQLite, a report or the terminal it is
cleaned here, so nothing downstream has to cope with text Python can hold but
cannot encode (a lone surrogate breaks JSON serialisation, SQLite and stdout):

- lone surrogates (and bytes that are not UTF-8) become U+FFFD;
- control characters other than newline and tab are dropped (escape sequences
  could rewrite the terminal; NUL truncates C strings); CR LF and CR become LF;
- the result is NFC, so the same word always has the same code points.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
# C0 controls but \t and \n, DEL and the C1 block. \r is handled before (line ends).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` with surrogates replaced, control characters dropped, in NFC."""
    if text.isascii() and text.isprintable():  # the common case: nothing to do
        return text
    text = _SURROGATES.sub(REPLACEMENT, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROLS.sub("", text))


def clean_bytes(data: bytes) -> str:
    """Decode UTF-8 (a BOM is dropped, invalid bytes become U+FFFD), then `clean`."""
    return clean(data.decode("utf-8-sig", errors="replace"))
