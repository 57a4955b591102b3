"""The start-up cache: built from real imports, run without importlib, ignored when anything changed."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kobako import startupcache

SRC = str(Path(__file__).resolve().parents[2] / "src")

PACKAGE = {
    "pkg/__init__.py": "from pkg.sub import VALUE\nBEFORE = 'pkg'\n",
    "pkg/sub.py": "import _json\nfrom pkg import helper\nVALUE = helper.double(21)\n",
    "pkg/helper.py": "def double(x):\n    '''doc'''\n    return 2 * x\n",
    "pkg/lazy.py": "import os\nLAZY = os.sep\ntry:\n    assert not LAZY\n    ASSERTS = False\nexcept AssertionError:\n    ASSERTS = True\n",
    "pkg/boom.py": "import os\nif os.environ.get('BOOM'):\n    raise RuntimeError('boom at import')\nOK = 1\n",
}

# Runs in a fresh interpreter: preload, then report what importlib still had to import and the modules.
PROBE = """
import json, sys
sys.path[0:0] = {path!r}
from kobako.startupcache import preload
ran = preload({cache!r}, sys.argv, ["root"], {groups!r})
import pkg, pkg.sub
report = {{"ran": ran, "value": pkg.VALUE, "before": pkg.BEFORE, "sub_attr": pkg.sub is sys.modules["pkg.sub"],
          "path": pkg.__path__, "file": pkg.sub.__file__, "package": pkg.sub.__package__,
          "doc": pkg.helper.double.__doc__}}
if "lazy" in sys.argv:
    import pkg.lazy
    report["lazy"] = pkg.lazy.LAZY
    report["asserts"] = pkg.lazy.ASSERTS
if "boom" in sys.argv:
    try:
        import pkg.boom
    except RuntimeError as exc:
        report["boom"] = str(exc)
    report["boom_loaded"] = "pkg.boom" in sys.modules
print(json.dumps(report))
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for name, text in PACKAGE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _build(cache: Path, lib: Path) -> None:
    startupcache.build(
        str(cache),
        {"": ["pkg"], "go": ["pkg", "pkg.lazy"], "boom": ["pkg", "pkg.boom"]},
        [str(lib), SRC],
    )


def _probe(cache: Path, lib: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    code = PROBE.format(path=[str(lib), SRC], cache=str(cache), groups=["", "go", "boom"])
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    return json.loads(proc.stdout), " ".join(imported)


def test_a_group_runs_without_importlib_and_matches_a_normal_import(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    assert sorted(os.listdir(cache)) == ["boom.startup", "default.startup", "go.startup"]

    report, imported = _probe(cache, package, "--root", "/somewhere", "go", "lazy")
    assert report["ran"] is True
    assert report["value"] == 42 and report["before"] == "pkg" and report["sub_attr"] is True
    assert report["path"] == [str(package / "pkg")]
    assert report["file"] == str(package / "pkg" / "sub.py") and report["package"] == "pkg"
    assert report["lazy"] == os.sep
    assert report["doc"] is None  # docstrings are left out of the cache
    assert report["asserts"] is True  # but not assert statements (unlike -OO)
    # Nothing of the group went through importlib; the C extension it uses was imported normally.
    assert "pkg" not in imported.split() and "pkg.lazy" not in imported and "pkg.sub" not in imported
    assert "_json" in imported

    plain, plain_imported = _probe(tmp_path / "no-cache", package, "go", "lazy")
    assert plain["ran"] is False and "pkg.sub" in plain_imported
    assert {k: v for k, v in plain.items() if k not in ("ran", "doc")} == {
        k: v for k, v in report.items() if k not in ("ran", "doc")
    }


def test_the_verb_picks_the_group_and_anything_else_the_default(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    report, imported = _probe(cache, package, "--root=/x", "other", "lazy")
    assert report["ran"] is True
    assert "pkg.sub" not in imported and "pkg.lazy" in imported  # the default group holds only pkg
    # A verb that would name a path outside the cache is just another unknown verb.
    report, _ = _probe(cache, package, "../../go", "lazy")
    assert report["ran"] is True


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["prog", "--root", "/x", "run", "id"], "run"),
        (["prog", "--root=/x", "--debug", "state", "id"], "state"),
        (["prog", "-root", "/x", "kill", "id", "KILL"], "kill"),
        (["prog", "--debug"], ""),
        (["prog"], ""),
    ],
)
def test_verb_of_argv(argv: list[str], verb: str) -> None:
    assert startupcache._verb(argv, ["root", "log"]) == verb


def test_a_changed_source_makes_the_cache_ignored(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    (package / "pkg" / "helper.py").write_text("def double(x):\n    return 3 * x\n")
    report, imported = _probe(cache, package, "go")
    assert report["ran"] is False
    assert report["value"] == 63  # the new source, imported the ordinary way
    assert "pkg.helper" in imported


def test_another_python_or_format_makes_the_cache_ignored(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    path = cache / "go.startup"
    fmt, _python, modules, codes = marshal.loads(path.read_bytes())
    path.write_bytes(marshal.dumps((fmt, "2.7.18", modules, codes)))
    assert _probe(cache, package, "go")[0]["ran"] is False
    path.write_bytes(b"not a cache")
    assert _probe(cache, package, "go")[0]["ran"] is False


def test_a_failing_module_body_raises_where_a_normal_import_would(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    report, _ = _probe(cache, package, "boom", "boom", env={"BOOM": "1"})
    assert report["ran"] is True  # the cache ran up to the failing module
    assert report["value"] == 42  # what came before it stays loaded
    assert report["boom"] == "boom at import" and report["boom_loaded"] is False


def test_stale_group_files_are_removed_on_rebuild(tmp_path: Path, package: Path) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    startupcache.build(str(cache), {"": ["pkg"]}, [str(package), SRC])
    assert os.listdir(cache) == ["default.startup"]


def test_a_broken_entry_fails_the_build_with_its_error(tmp_path: Path, package: Path) -> None:
    with pytest.raises(RuntimeError, match=r"No module named 'pkg\.missing'"):
        startupcache.build(str(tmp_path / "cache"), {"x": ["pkg.missing"]}, [str(package), SRC])


RUNTIME_PROBE = """
import json, sys
sys.path[0:0] = {path!r}
if sys.argv[1] == "cache":
    from kobako.startupcache import preload
    assert preload({cache!r}, ["kobako-runtime", "run"], [], ["run"])
    names = sorted(n for n in sys.modules if n.startswith("kobako.") and n != "kobako.startupcache")
else:
    names = json.loads(sys.argv[2])
    for name in names:
        __import__(name)
print(json.dumps({{n: sorted(k for k in vars(sys.modules[n]) if k not in ("__cached__", "__loader__",
                  "__spec__", "__builtins__", "__doc__")) for n in names}}))
"""


def _cached_and_plain(tmp_path: Path, modules: list[str]) -> tuple[dict, dict]:
    """What each module defines when the group runs from a cache, and when the same modules are imported."""
    cache = tmp_path / "cache"
    startupcache.build(str(cache), {"run": modules}, [SRC])
    code = RUNTIME_PROBE.format(path=[SRC], cache=str(cache))
    cached = json.loads(subprocess.check_output([sys.executable, "-I", "-S", "-c", code, "cache"]))
    plain = json.loads(
        subprocess.check_output([sys.executable, "-I", "-S", "-c", code, "plain", json.dumps(sorted(cached))])
    )
    return cached, plain


def test_the_runtime_run_group_defines_what_plain_imports_define(tmp_path: Path) -> None:
    """The recorded order is a valid order for the real runtime modules (packages before use, etc.)."""
    from kobako.runtime.startup import groups

    cached, plain = _cached_and_plain(tmp_path, groups()[0]["run"])
    assert "kobako.runtime.process.init" in cached and "kobako.cgroups" in cached
    assert cached == plain


def test_the_cli_run_group_defines_what_plain_imports_define(tmp_path: Path) -> None:
    from kobako.cli.startup import groups

    by_verb, flags = groups()
    assert flags == set()  # `kobako` has no global flags: the verb is the first word
    cached, plain = _cached_and_plain(tmp_path / "run", by_verb["run"])
    assert "kobako.cli.containers" in cached and "kobako.snapshots.overlay" in cached
    assert "kobako.cli.containers_io" not in cached  # after go: the "run-end" group
    assert cached == plain
    cached, plain = _cached_and_plain(tmp_path / "end", by_verb["run-end"])
    assert "kobako.cli.containers_io" in cached and "kobako.runtime.lifecycle.delete" in cached
    assert cached == plain


LATER_PROBE = """
import gc, json, sys
sys.path[0:0] = {path!r}
from kobako import startupcache
report = {{"without": startupcache.preload_later("go")}}
startupcache.LATER = ({cache!r}, ["go"])
gc.disable()  # a caller that keeps the collector off (kobako run) finds it still off
report["ran"] = startupcache.preload_later("go")
report["gc"] = gc.isenabled()
report["loaded"] = "pkg.lazy" in sys.modules
print(json.dumps(report))
"""


def test_preload_later_uses_the_launchers_directory_and_keeps_the_collector_as_it_was(
    tmp_path: Path, package: Path
) -> None:
    cache = tmp_path / "cache"
    _build(cache, package)
    code = LATER_PROBE.format(path=[str(package), SRC], cache=str(cache))
    report = json.loads(subprocess.check_output([sys.executable, "-I", "-S", "-c", code]))
    assert report == {"without": False, "ran": True, "gc": False, "loaded": True}
