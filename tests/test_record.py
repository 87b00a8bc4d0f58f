"""The record convention: keys, rejects, and which errors count as bad input."""

from __future__ import annotations

import pytest
from fastwarc.warc import ArchiveIterator

from filters.record import Dropped, is_input_error, make_key, new_record, reject


def test_keys_are_stable_and_have_no_dots():
    key = make_key("http://x.org/a.jpg", "a photo")
    assert key == make_key("http://x.org/a.jpg", "a photo") and len(key) == 20
    assert "." not in key and key != make_key("http://x.org/a.jpg", "a photo.")


def test_reject_keeps_fields_but_not_image_bytes():
    record = dict(new_record("http://x.org/a.jpg", "alt", page_url="http://x.org/"), image_bytes=b"x")
    dropped = Dropped("http_404", "not found", http_status=404).reject(record, "download")
    assert dropped["stage"] == "download" and dropped["reason"] == "http_404"
    assert dropped["http_status"] == 404 and "image_bytes" not in dropped
    assert reject(record, "image", "too_small")["page_url"] == "http://x.org/"


def test_a_native_parser_panic_counts_as_bad_input_but_interrupts_do_not():
    class NoTell:  # FastWARC (Rust) panics on a stream it cannot tell() on
        def read(self, size=-1):
            return b"WARC/1.0\r\n"

    with pytest.raises(BaseException) as caught:
        list(ArchiveIterator(NoTell()))
    assert not isinstance(caught.value, Exception)
    assert is_input_error(caught.value)
    assert is_input_error(ValueError("x"))
    assert not is_input_error(KeyboardInterrupt())
