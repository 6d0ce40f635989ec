"""The edge cleaner (mlsd_bot/textsafe.py): what comes out is always safe to store, encode and print."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from mlsd_bot.textsafe import REPLACEMENT, clean, clean_bytes

FAST = settings(max_examples=300, deadline=None, database=None, derandomize=True)


def assert_safe(text: str) -> None:
    """Encodable as strict UTF-8 and JSON, no control character but newline and tab, in NFC."""
    text.encode("utf-8")  # raises on a lone surrogate
    json.dumps(text, ensure_ascii=False).encode("utf-8")
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in text)
    assert unicodedata.is_normalized("NFC", text)


def test_examples():
    assert clean("plain ascii, nothing to do") == "plain ascii, nothing to do"
    assert clean("lone \ud800 surrogate") == f"lone {REPLACEMENT} surrogate"
    assert clean("a\x00b\x1b[2Jc\x7fd\x85e") == "ab[2Jcde"  # NUL, ESC, DEL, C1 dropped
    assert clean("line\r\nnext\rlast\tcell\n") == "line\nnext\nlast\tcell\n"
    assert clean("Cafe\u0301") == "Caf\u00e9"  # NFC: e + combining acute becomes one code point
    assert clean("emoji \U0001F600 and 中文 stay") == "emoji \U0001F600 and 中文 stay"
    assert clean("zero\u200bwidth") == "zero\u200bwidth"  # format characters are not controls: kept


def test_bytes_examples():
    assert clean_bytes(b"ok \xff\xfe bytes") == f"ok {REPLACEMENT}{REPLACEMENT} bytes"
    assert clean_bytes("\ufeffwith a BOM".encode("utf-8")) == "with a BOM"
    assert clean_bytes(b"\xed\xa0\x80") .count(REPLACEMENT) >= 1  # an encoded surrogate is not UTF-8
    assert clean_bytes("naïve".encode("utf-8")) == "naïve"


@FAST
@given(st.text(alphabet=st.characters(codec=None, blacklist_categories=())))
def test_any_text_comes_out_safe_and_cleaning_twice_changes_nothing(text):
    out = clean(text)
    assert_safe(out)
    assert clean(out) == out


@FAST
@given(st.binary())
def test_any_bytes_come_out_safe(data):
    out = clean_bytes(data)
    assert_safe(out)
    assert clean(out) == out


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_clean_text_is_only_normalised(text):
    assert clean(text) == unicodedata.normalize("NFC", text)
