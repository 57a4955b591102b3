"""A start-up cache: the modules a command needs, marshalled into one file and run without importlib.

A container start is dominated by the interpreter: Python's own start-up, then ~40 imports, each a trip
through importlib (finders, stats, file reads, locks, spec objects) before its body runs. ``build``
records, in a fresh interpreter, the order in which the modules of each *group* (e.g. a runtime verb)
finish importing, and stores their code objects in one file. ``preload`` executes a group's modules
straight into ``sys.modules`` in that order, so the ``import`` statements in their bodies find
everything already there. It is an accelerator only:

- every source file is stat'ed against the size and mtime recorded at build time, and another Python
  version or any change means the cache is ignored (plain imports, same behaviour);
- a module body that raises is taken out again and preloading stops, so the normal import that follows
  raises the same error where it always did;
- C extensions the group imports are imported (normally) at their place in the order; frozen modules
  and anything not in the group are imported the usual way when first needed.

``make install`` builds the launchers' caches (``scripts/write_launchers.py``); ``make`` rebuilds them
whenever a source file is newer.
"""

import marshal
import sys

FORMAT = 2
#: (directory, groups) for a process that preloads later, once it knows it needs a group (``preload_later``):
#: set by its launcher.
LATER: tuple[str, list[str]] | None = None


def preload(directory: str, argv: list[str], value_flags: list[str], groups: list[str]) -> bool:
    """Run the group named by the command word in ``argv`` (one of ``groups``, else ``default``) from
    ``directory``; True if it ran. ``value_flags``: the global flags that take a value."""
    import gc

    verb = _verb(argv, value_flags)
    # Thousands of new objects, none of them garbage: no collections while they are made, and (frozen)
    # none walking them later.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with open(f"{directory}/{verb if verb in groups else 'default'}.startup", "rb") as f:
            fmt, python, modules, codes = marshal.loads(f.read())
        if fmt != FORMAT or python != sys.version:
            return False
        from posix import stat

        for _name, source, size, mtime, _is_package in modules:
            if source is None:
                continue
            st = stat(source)
            if st.st_size != size or st.st_mtime_ns != mtime:
                return False
        _run(modules, codes)
        gc.freeze()
        return True
    except (OSError, ValueError, EOFError, TypeError):
        return False
    finally:
        if collecting:
            gc.enable()


def preload_later(group: str) -> bool:
    """``preload`` of ``group`` from the directory the launcher named (see ``LATER``); False without one."""
    if LATER is None:
        return False
    directory, groups = LATER
    return preload(directory, ["", group], [], groups)


def _verb(argv: list[str], value_flags: list[str]) -> str:
    """The first word of ``argv[1:]`` that is neither a flag nor the value of a global flag."""
    args = iter(argv[1:])
    for arg in args:
        if not arg.startswith("-"):
            return arg
        name, eq, _ = arg.lstrip("-").partition("=")
        if name in value_flags and not eq:
            next(args, None)
    return ""


def _run(modules: list[tuple], codes: list) -> None:
    loaded = sys.modules
    new_module = type(sys)
    placeholders: set[str] = set()
    for (name, source, _size, _mtime, is_package), code in zip(modules, codes, strict=True):
        if name in loaded and name not in placeholders:
            continue
        if code is None:  # a C extension: the ordinary import, at the same point as when recorded
            try:
                __import__(name)
            except ImportError:
                return
            continue
        parent, _, child = name.rpartition(".")
        if parent and parent not in loaded:
            # A package's __init__ imports its submodules first, so they finish (and run here) before
            # it: give them the package object it will run in, as the import system does.
            loaded[parent] = new_module(parent)
            placeholders.add(parent)
        module = loaded.get(name) or new_module(name)
        placeholders.discard(name)
        module.__file__ = source
        module.__cached__ = None
        module.__package__ = name if is_package else parent
        if is_package:
            module.__path__ = [source.rpartition("/")[0]]
        loaded[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            # Undo this module and the packages not run yet: the import that follows raises the same
            # error in its usual place.
            for undone in (name, *placeholders):
                del loaded[undone]
            return
        if parent:
            setattr(loaded[parent], child, module)


def build(directory: str, groups: dict[str, list[str]], search_path: list[str]) -> None:
    """Record each group's import order in a fresh interpreter (on ``search_path``) and write
    ``directory/<group>.startup`` (the group ``""`` is ``default``). Docstrings are left out."""
    import os
    import subprocess

    os.makedirs(directory, exist_ok=True)
    wanted = {f"{group or 'default'}.startup" for group in groups}
    for name in os.listdir(directory):
        if name.endswith(".startup") and name not in wanted:
            os.unlink(os.path.join(directory, name))
    for group, entries in groups.items():
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _RECORDER, os.pathsep.join(search_path), *entries],
            capture_output=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"recording start-up group {group!r} failed:\n{proc.stderr.decode()}")
        modules, codes = [], []
        for name, source, is_package in marshal.loads(proc.stdout):
            if source is None:
                modules.append((name, None, 0, 0, False))
                codes.append(None)
                continue
            st = os.stat(source)
            with open(source, "rb") as f:
                codes.append(
                    compile(_without_docstrings(f.read(), source), source, "exec", dont_inherit=True)
                )
            modules.append((name, source, st.st_size, st.st_mtime_ns, is_package))
        path = os.path.join(directory, f"{group or 'default'}.startup")
        with open(f"{path}.tmp", "wb") as f:
            f.write(marshal.dumps((FORMAT, sys.version, modules, codes)))
        os.replace(f"{path}.tmp", path)


def _without_docstrings(source: bytes, filename: str) -> object:
    """The module's syntax tree without its docstrings (a smaller file, less to unmarshal); unlike
    ``-OO`` it keeps ``assert`` statements, so the cached code behaves as the imported one does."""
    import ast

    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass(lineno=body[0].lineno, col_offset=0)]  # type: ignore[attr-defined]
    return tree


# Runs in a fresh `python -I -S`: import the entries; write (name, source, is_package) of every module
# loaded from a .py file, in the order their bodies finished, and (name, None, False) of every C
# extension or built-in module, where it was imported; marshalled to stdout.
_RECORDER = """
import marshal, os, sys
sys.path[0:0] = sys.argv[1].split(os.pathsep)
from importlib.machinery import ExtensionFileLoader, PathFinder, SourceFileLoader
order = []
class Recorder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in sys.builtin_module_names:
            order.append((name, None, False))
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is not None and isinstance(spec.loader, ExtensionFileLoader):
            order.append((name, None, False))
            return None
        if spec is None or not isinstance(spec.loader, SourceFileLoader):
            return None
        real = spec.loader
        class Loader(SourceFileLoader):
            def exec_module(self, module):
                real.exec_module(module)
                order.append((name, spec.origin, spec.submodule_search_locations is not None))
        spec.loader = Loader(real.name, real.path)
        return spec
sys.meta_path.insert(0, Recorder)
for entry in sys.argv[2:]:
    __import__(entry)
sys.stdout.buffer.write(marshal.dumps(order))
"""
