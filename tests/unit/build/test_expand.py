"""Variable substitution, quotes and escapes (the Dockerfile reference's "Environment replacement")."""

from __future__ import annotations

import pytest

from kobako.build.dockerfile.expand import (
    ExpandError,
    expand_heredoc,
    process_word,
    process_words,
    split_words,
)

ENV = {"FOO": "/bar", "EMPTY": "", "SP": "a b", "str": "foobarbaz", "string": "foobarbaz"}


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("${FOO}", "/bar"),
        ("$FOO", "/bar"),
        ("${FOO}_bar", "/bar_bar"),
        ("$FOO_bar", ""),  # the name runs on: FOO_bar is unset
        ("\\$FOO", "$FOO"),
        ("\\${FOO}", "${FOO}"),
        ("${NOPE}", ""),
        ("${NOPE:-word}", "word"),
        ("${EMPTY:-word}", "word"),
        ("${EMPTY-word}", ""),
        ("${NOPE-word}", "word"),
        ("${FOO:-word}", "/bar"),
        ("${FOO:+word}", "word"),
        ("${EMPTY:+word}", ""),
        ("${EMPTY+word}", "word"),
        ("${NOPE+word}", ""),
        ("${NOPE:-$FOO/x}", "/bar/x"),
        ("${str#f*b}", "arbaz"),
        ("${str##f*b}", "az"),
        ("${string%b*}", "foobar"),
        ("${string%%b*}", "foo"),
        ("${string/ba/fo}", "fooforbaz"),
        ("${string//ba/fo}", "fooforfoz"),
        ("${str#\\*}", "foobarbaz"),
        ("'$FOO'", "$FOO"),
        ('"$FOO"', "/bar"),
        ('"a \\" b"', 'a " b'),
        ('"a \\$FOO"', "a $FOO"),
        ('"a \\n"', "a \\n"),
        ("Rex\\ The\\ Dog", "Rex The Dog"),
        ('"John Doe"', "John Doe"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1x", "x"),
        ("end\\", "end"),
    ],
)
def test_process_word(word: str, want: str) -> None:
    assert process_word(word, ENV) == want


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${FOO", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:x}", "bad substitution"),
        ("${NOPE:?must be set}", "NOPE: must be set"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${NOPE?}", "NOPE: is not allowed to be unset"),
        ("${FOO:x}", "unsupported modifier"),
        ("'open", "single-quote"),
        ('"open', "double-quote"),
    ],
)
def test_process_word_errors(word: str, message: str) -> None:
    with pytest.raises(ExpandError, match=message):
        process_word(word, ENV)


def test_backtick_escape() -> None:
    assert process_word("c:`$FOO", ENV, "`") == "c:$FOO"
    assert process_word("c:\\dir", ENV, "`") == "c:\\dir"


def test_process_words_splits_unquoted_expansions() -> None:
    assert process_words("a 'b c' $SP \"$SP\" ''", ENV) == ["a", "b c", "a", "b", "a b", ""]
    assert process_words("  8000-8002/udp   80 ", ENV) == ["8000-8002/udp", "80"]


def test_split_words_keeps_quotes() -> None:
    assert split_words('MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog  MY_CAT=fluffy') == [
        'MY_NAME="John Doe"', "MY_DOG=Rex\\ The\\ Dog", "MY_CAT=fluffy"]  # fmt: skip
    assert split_words("a='x y' b") == ["a='x y'", "b"]


def test_heredoc_expansion_keeps_quotes() -> None:
    assert expand_heredoc("echo \"hello ${FOO}\" '$FOO' \\$FOO\n", ENV) == "echo \"hello /bar\" '/bar' $FOO\n"


def test_env_replacement_uses_values_from_before_the_instruction() -> None:
    # ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc: def is hello, ghi is bye (each instruction
    # expands all its words with the environment as it was before it).
    env = {"abc": "hello"}
    pairs = [(k, process_word(v, env)) for k, v in [("abc", "bye"), ("def", "$abc")]]
    assert pairs == [("abc", "bye"), ("def", "hello")]
    env.update(pairs)
    assert process_word("$abc", env) == "bye"
