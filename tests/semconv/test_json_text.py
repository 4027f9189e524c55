"""The one reader of JSON text (semconv/json_text.py): UTF-8, a depth limit, no NaN/Infinity literals, and a
lone surrogate escape read as U+FFFD."""

from __future__ import annotations

import json

import pytest

from costspan.semconv.json_text import MAX_JSON_DEPTH, JSONTextError, loads


def test_a_lone_surrogate_escape_is_read_as_the_replacement_character():
    assert loads(rb'["\ud800", "a\udc00b", "\uDBFF"]') == ["\ufffd", "a\ufffdb", "\ufffd"]
    # a pair is one character; an escaped backslash before "ud800" is no escape at all
    assert loads(rb'["\ud83d\ude00", "\\ud800", "\\\ud800"]') == ["\U0001f600", "\\ud800", "\\\ufffd"]
    # a pair the wrong way round is two lone surrogates
    assert loads(rb'"\ude00\ud83d"') == "\ufffd\ufffd"
    for value in loads(rb'{"\ud800": ["\udfff"]}').items():
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every string can be written as UTF-8


def test_nesting_past_the_limit_is_refused_whatever_its_depth():
    assert loads(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    for depth in (MAX_JSON_DEPTH + 1, 5000, 200_000):
        with pytest.raises(JSONTextError, match="nested deeper than"):
            loads(b'{"a":' * depth + b"1" + b"}" * depth)
    # brackets inside strings are no nesting
    assert loads(json.dumps(["[" * 1000]).encode()) == ["[" * 1000]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"NaN", "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b"\xff", "not UTF-8"),
        (b"1" * 5000, "not JSON"),  # more digits than Python converts to an int
        (b'{"a": 1', "not JSON"),
    ],
)
def test_what_is_not_json_is_refused_with_a_message(body, message):
    with pytest.raises(JSONTextError, match=message):
        loads(body)


def test_a_body_of_millions_of_small_values_is_refused_before_it_is_decoded():
    with pytest.raises(JSONTextError, match="more than 200000 objects and arrays"):
        loads(b"[" + b"{}," * 1_000_000 + b"{}]")
    with pytest.raises(JSONTextError, match="more than 1000000 values"):
        loads(b"[" + b"0," * 2_000_000 + b"0]")
    # what is inside strings is not counted
    assert loads(json.dumps(["{[,"] * 150_000).encode()) == ["{[,"] * 150_000
