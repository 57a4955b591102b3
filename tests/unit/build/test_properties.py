"""Property tests: the parser, the word processor and the ignore rules never crash on any input; every
refusal is a clear kobako error (with a position for Dockerfiles)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kobako.build.context import IgnoreMatcher, parse_ignore
from kobako.build.dockerfile.expand import ExpandError, process_word, process_words, split_words
from kobako.build.dockerfile.parser import INSTRUCTIONS, DockerfileSyntaxError, parse
from kobako.errors import InvalidArgument

# Pieces that exercise every branch: instructions, flags, quotes, escapes, substitutions, JSON, heredocs.
_TOKENS = [*INSTRUCTIONS, *(i.lower() for i in INSTRUCTIONS), "AS", "--from=", "--mount=", "--chown=", "--interval=",
           "CMD", "NONE", "[", "]", '"', "'", "\\", "`", "$", "${", "}", ":-", ":+", ":?", "#", "# escape=`",
           "# syntax=x", "<<", "<<-", "EOF", "\n", "\r\n", " ", "\t", "=", ",", "x", "a b", "/", "..", "*", "0"]  # fmt: skip
dockerfiles = st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join) | st.text(max_size=200)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(dockerfiles)
def test_parser_never_crashes(text: str) -> None:
    try:
        df = parse(text, "Dockerfile")
    except DockerfileSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert str(exc).startswith(f"Dockerfile:{exc.line}:{exc.column}: ")
        return
    assert df.stages, "a parsed Dockerfile always has a stage"
    for stage in df.stages:
        for ins in stage.instructions:
            assert ins.cmd in INSTRUCTIONS and ins.line >= 1


@SETTINGS
@given(dockerfiles)
def test_parser_accepts_with_a_from_prefix_or_refuses_clearly(text: str) -> None:
    try:
        parse("FROM x\n" + text)
    except DockerfileSyntaxError as exc:
        assert exc.line >= 1


words = st.lists(st.sampled_from(["$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "'", '"', "\\", "`", "A", "B",
                                  "a", " ", "*", "1"]), max_size=30).map("".join) | st.text(max_size=50)  # fmt: skip


@SETTINGS
@given(words, st.sampled_from(["\\", "`"]))
def test_word_processing_never_crashes(word: str, escape: str) -> None:
    env = {"A": "x y", "B": "", "a": "1"}
    for fn in (process_word, process_words):
        try:
            fn(word, env, escape)
        except ExpandError as exc:
            assert str(exc)
    split_words(word, escape)


@SETTINGS
@given(st.lists(st.sampled_from(["*", "**", "?", "[", "]", "^", "!", "\\", "/", ".", "..", "a", "b", "#", " ",
                                 "\n", "{", "(", "$"]), max_size=30).map("".join),
       st.lists(st.sampled_from(["a", "b", "a/b", ".", "x/a/b/c"]), min_size=1, max_size=4))  # fmt: skip
def test_ignore_rules_never_crash(text: str, paths: list[str]) -> None:
    try:
        m = IgnoreMatcher(parse_ignore(text))
    except InvalidArgument as exc:
        assert ".dockerignore line" in str(exc)
        return
    for p in paths:
        assert m.excluded(p) in (True, False)
