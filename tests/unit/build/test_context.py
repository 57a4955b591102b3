""".dockerignore rules (the Docker docs' examples), COPY sources with wildcards, and context checksums."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.build.cache import BuildCache
from kobako.build.context import (
    IgnoreMatcher,
    SourceTree,
    checksum,
    component_regex,
    load_ignore,
    parse_ignore,
)
from kobako.errors import InvalidArgument, NotFound


def matcher(text: str) -> IgnoreMatcher:
    return IgnoreMatcher(parse_ignore(text))


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("somedir/temporary.txt", True),  # */temp*
        ("somedir/temp", True),
        ("somedir/subdir/temporary.txt", True),  # */*/temp*
        ("tempa", True),  # temp?
        ("tempb", True),
        ("temp", False),
        ("temporary.txt", False),
        ("a/b/c/temp1", False),
    ],
)
def test_docs_example(path: str, excluded: bool) -> None:
    m = matcher("# comment\n*/temp*\n*/*/temp*\ntemp?\n")
    assert m.excluded(path) is excluded


def test_double_star() -> None:
    m = matcher("**/*.go\n")
    assert m.excluded("main.go") and m.excluded("a/b/c.go") and not m.excluded("a/b/c.py")
    m = matcher("src/**\n")
    assert m.excluded("src/a") and m.excluded("src/a/b") and not m.excluded("srcx")


def test_exceptions_last_match_wins() -> None:
    m = matcher("*.md\n!README*.md\nREADME-secret.md\n")
    assert m.excluded("CHANGES.md") and not m.excluded("README.md") and m.excluded("README-secret.md")
    m = matcher("*.md\nREADME-secret.md\n!README*.md\n")
    assert not m.excluded("README-secret.md") and not m.excluded("README.md")


def test_parent_directory_matches_exclude_everything_below() -> None:
    m = matcher("node_modules\n/abs/x/\n./dot\n")
    assert m.excluded("node_modules/a/b.js") and m.excluded("abs/x/y") and m.excluded("dot/z")
    assert not m.excluded("abs/y") and not m.excluded("a/node_modules")


def test_only_column_one_hash_is_a_comment_and_lines_are_trimmed() -> None:
    m = matcher("  # not a comment\n   spaced.txt   \n")
    assert m.excluded("spaced.txt") and m.excluded("# not a comment")


def test_everything_but() -> None:
    m = matcher("*\n!src\n!Dockerfile\n")
    assert m.excluded("other") and not m.excluded("src/a/b.c") and not m.excluded("Dockerfile")


def test_bad_patterns() -> None:
    with pytest.raises(InvalidArgument, match="illegal exclusion"):
        parse_ignore("!\n")
    with pytest.raises(InvalidArgument, match="bad pattern"):
        parse_ignore("a[\n")


def test_go_match_components() -> None:
    assert component_regex("*.png").fullmatch("a.png") and not component_regex("*.png").fullmatch("a.jpg")
    assert component_regex("index.?s").fullmatch("index.ts")
    assert component_regex("arr[[]0].txt").fullmatch("arr[0].txt")
    assert component_regex("[^a]x").fullmatch("bx") and not component_regex("[^a]x").fullmatch("ax")
    assert component_regex("\\*").fullmatch("*") and not component_regex("\\*").fullmatch("a")


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    for rel, text in {"a.txt": "a", "b.txt": "b", "c.md": "c", "dir/x": "x", "dir/sub/y": "y", "secret": "s",
                      "keep/k": "k", "keep/drop": "d"}.items():  # fmt: skip
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / ".dockerignore").write_text("secret\nkeep/drop\n")
    os.symlink("/etc", tmp_path / "escape")
    os.symlink("dir", tmp_path / "dirlink")
    return tmp_path


def test_sources(ctx: Path) -> None:
    tree = SourceTree(str(ctx), load_ignore(str(ctx)))
    assert [s.rel for s in tree.sources("*.txt")] == ["a.txt", "b.txt"]
    assert [s.rel for s in tree.sources("../../a.txt")] == ["a.txt"]
    assert [s.rel for s in tree.sources("/dir/")] == ["dir"]
    assert tree.sources("dirlink")[0].is_dir
    assert [s.rel for s in tree.sources("d*/s*")] == ["dir/sub", "dirlink/sub"]  # Go's Glob follows links
    with pytest.raises(NotFound, match=r"excluded by \.dockerignore: secret"):
        tree.sources("secret")
    with pytest.raises(NotFound, match="matches nothing"):
        tree.sources("*.nope")
    # a symlink to /etc resolves inside the context, where there is no etc
    with pytest.raises(NotFound):
        tree.sources("escape/passwd")


def test_walk_skips_ignored(ctx: Path) -> None:
    tree = SourceTree(str(ctx), load_ignore(str(ctx)))
    src = tree.sources(".")[0]
    names = [rel for rel, _, _ in tree.walk(src.rel, src.host)]
    assert "secret" not in names and "keep/drop" not in names and "keep/k" in names
    assert names.index("dir") < names.index("dir/sub") < names.index("dir/sub/y")


def test_dockerfile_specific_ignore_wins(ctx: Path, tmp_path: Path) -> None:
    df = ctx / "Special.Dockerfile"
    (ctx / "Special.Dockerfile.dockerignore").write_text("a.txt\n")
    m = load_ignore(str(ctx), str(df))
    assert m.excluded("a.txt") and not m.excluded("secret")


def test_checksum_tracks_content_and_mode_not_times(ctx: Path, tmp_path: Path) -> None:
    cache = BuildCache(str(tmp_path / "state"))
    tree = SourceTree(str(ctx), load_ignore(str(ctx)))

    def digest() -> str:
        return checksum(tree, tree.sources("dir"), cache)

    first = digest()
    assert digest() == first
    os.utime(ctx / "dir" / "x", (1, 1))
    assert digest() == first
    (ctx / "dir" / "x").write_text("changed")
    second = digest()
    assert second != first
    os.chmod(ctx / "dir" / "sub" / "y", 0o600)
    assert digest() != second
    cache.close()
