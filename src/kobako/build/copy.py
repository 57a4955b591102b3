"""COPY and ADD: sources, destination rules, cache key, and the layer.

Sources come from the build context (after .dockerignore), from an earlier stage or a local image
(``--from``), or from here-documents (``COPY <<EOF /file``). Wildcards follow Go's filepath.Match; a
source path is cleaned so ``../x`` and ``/x`` stay inside the context. The destination is relative to
WORKDIR unless absolute; with several sources it must end in ``/``; a file goes *into* a destination that
ends in ``/`` or is an existing directory, else *to* it; a directory's contents are merged into it.

ADD also unpacks local tar archives (plain, gzip, bzip2, xz, zstd: detected by content, not name) into
the destination; remote URLs are refused, as kobako builds have no network. The cache key covers a
checksum of the context sources (names, modes, contents), the stage or image key for ``--from``, the
expanded here-document bodies, the destination and the flags.
"""

from __future__ import annotations

import hashlib
import json
import os

from kobako.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from kobako.build.context import Source, SourceTree
    from kobako.build.copier import Copier
    from kobako.build.dockerfile.ast import Instruction
    from kobako.build.session import Session, Step
    from kobako.build.state import StageState

_REMOTE = ("http://", "https://", "git@", "git://", "ssh://")


def _heredoc_name(word: str) -> str | None:
    """The here-document a source word names (``<<EOF``, ``<<-"EOF"``), or None."""
    head = word.lstrip("0123456789")
    if not head.startswith("<<") or head.startswith("<<<"):
        return None
    return head[2:].removeprefix("-").strip("'\"") or None


class CopyPlan:
    """One COPY/ADD after expansion: ``paths`` (source specs), ``docs`` (here-document name → bytes), the
    destination (``dest`` absolute, ``into`` when it names a directory), ``stage`` (for ``--from``) and the
    flags."""

    def __init__(self, session: Session, ins: Instruction, state: StageState) -> None:
        from kobako.build.context import IgnoreMatcher, parse_ignore
        from kobako.build.copier import ModeSpec
        from kobako.build.dockerfile.expand import expand_heredoc, process_word

        env = state.expansion_env()

        def word(text: str | None) -> str | None:
            return None if text is None else process_word(text, env, session.escape)

        self.cmd = ins.cmd
        heredocs = {d.name: d for d in ins.heredocs}
        self.docs: list[tuple[str, bytes]] = []
        self.paths: list[str] = []
        for raw in ins.args[:-1]:
            name = _heredoc_name(raw)
            if name is not None and name in heredocs:
                d = heredocs[name]
                content = expand_heredoc(d.content, env, session.escape) if d.expand else d.content
                self.docs.append((name, content.encode()))
                continue
            src = word(raw) or ""
            if src.startswith(_REMOTE):
                if ins.cmd == "COPY":
                    raise InvalidArgument(f"COPY cannot take a URL ({src}): use ADD")
                raise FailedPrecondition(f"ADD {src}: kobako builds have no network; put the file in the build "
                                         "context and COPY or ADD it from there")  # fmt: skip
            self.paths.append(src)
        self.dest_raw = word(ins.args[-1]) or ""
        workdir = str(state.section.get("WorkingDir") or "/")
        self.dest = os.path.normpath(os.path.join(workdir, self.dest_raw))
        raw = self.dest_raw
        self.dest_is_dir = raw.endswith("/") or raw in (".", "..") or raw.endswith(("/.", "/.."))
        self.from_ref = word(ins.flag("from"))
        self.chown = word(ins.flag("chown"))
        self.chmod_text = word(ins.flag("chmod"))
        self.chmod = ModeSpec(self.chmod_text) if self.chmod_text else None
        if ins.flag("checksum") is not None:
            raise InvalidArgument("ADD --checksum is only for remote sources")
        self.unpack = ins.cmd == "ADD" and (ins.flag("unpack") or "true").lower() in ("true", "1", "")
        self.parents = ins.bool_flag("parents")
        self.excludes = [word(x) or "" for x in ins.flags.get("exclude", [])]
        self.exclude = (
            IgnoreMatcher(parse_ignore("\n".join(self.excludes), "--exclude")) if self.excludes else None
        )
        self.stage = (
            (session.stage_state(self.from_ref) or session.image_state(self.from_ref))
            if self.from_ref
            else None
        )


def prepare(session: Session, ins: Instruction, state: StageState) -> Step:
    from kobako.build.context import checksum
    from kobako.build.session import Step

    plan = CopyPlan(session, ins, state)
    if plan.stage is not None:
        source_key: list = ["from", plan.stage.key, plan.paths]
        kind = "multi" if len(plan.paths) + len(plan.docs) > 1 else "file"
    else:
        sources = [s for p in plan.paths for s in session.context.sources(p)]
        source_key = ["context", checksum(session.context, sources, session.cache), plan.paths]
        count = len(sources) + len(plan.docs)
        kind = "multi" if count > 1 else "dir" if sources and sources[0].is_dir else "file"
    key = [plan.cmd, source_key, [[n, hashlib.sha256(c).hexdigest()] for n, c in plan.docs], plan.dest,
           plan.dest_is_dir, plan.chown, plan.chmod_text, plan.unpack, plan.parents, plan.excludes]  # fmt: skip
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()

    def apply(new: StageState) -> None:
        _copy(session, plan, new)
        empty = len(new.layers) == len(state.layers)
        new.add_history(
            f"/bin/sh -c #(nop) {plan.cmd} {kind}:{digest} in {plan.dest_raw} ", empty_layer=empty
        )

    return Step(key, apply)


def _owner(rootfs: str, chown: str | None) -> tuple[int, int] | None:
    """``--chown``: names from the image's passwd/group; a lone uid means gid = uid (Docker)."""
    if not chown:
        return None
    user, sep, _ = chown.partition(":")
    if user.isdigit() and not sep:
        return int(user), int(user)
    from kobako.engine import users

    u = users.resolve(rootfs, chown)
    return u.uid, u.gid


def _parents_rel(spec: str, src: Source) -> str:
    """``--parents``: the path kept under the destination (after a ``/./`` marker in the spec, if any)."""
    marker = os.path.normpath("/" + spec.partition("/./")[0]).lstrip("/") if "/./" in spec else ""
    return os.path.relpath(src.rel, marker) if marker else src.rel


def _copy(session: Session, plan: CopyPlan, state: StageState) -> None:
    from kobako.build.copier import Copier
    from kobako.build.layers import View

    ws = session.layers.workspace(state)
    view: View | None = None
    try:
        rootfs = ws.open()
        tree: SourceTree = session.context
        if plan.stage is not None:
            from kobako.build.context import SourceTree

            view = View(session.layers, plan.stage.top)
            tree = SourceTree(view.path, what=f"--from={plan.from_ref}")
        sources = [(p, s) for p in plan.paths for s in tree.sources(p)]
        if plan.exclude is not None:
            sources = [(p, s) for p, s in sources if not plan.exclude.excluded(s.rel)]
        if len(sources) + len(plan.docs) > 1 and not plan.dest_is_dir and not plan.parents:
            raise InvalidArgument(f"when using {plan.cmd} with more than one source file, the destination must "
                                  "be a directory and end with a /")  # fmt: skip
        copier = Copier(rootfs, _owner(rootfs, plan.chown), plan.chmod)
        into = plan.dest_is_dir or plan.parents or copier.is_dir(plan.dest)
        for name, data in plan.docs:
            copier.write_file(f"{plan.dest}/{name}" if into else plan.dest, data)
        for spec, src in sources:
            target = plan.dest
            if plan.parents:
                rel = _parents_rel(spec, src)
                target = os.path.join(plan.dest, rel if src.is_dir else os.path.dirname(rel))
            if plan.unpack and not src.is_dir and _archive(src.host) is not None:
                _extract(copier, src, target)
                continue
            copier.copy_source(tree, src, target, into, plan.exclude)
        copier.finish()
        if view is not None:
            view.close()
            view = None
        ws.commit(state)
    finally:
        if view is not None:
            view.close()
        ws.close()


def _archive(path: str) -> str | None:
    """The compression of a tar archive at ``path`` ("none" for a plain tar), None if it is no archive."""
    with open(path, "rb") as f:
        head = f.read(6)
    kind = "none"
    if head.startswith(b"\x1f\x8b"):
        kind = "gzip"
    elif head.startswith(b"BZh"):
        kind = "bzip2"
    elif head.startswith(b"\xfd7zXZ\x00"):
        kind = "xz"
    elif head.startswith(b"\x28\xb5\x2f\xfd"):
        kind = "zstd"
    try:
        with _open_archive(path, kind) as stream:
            block = stream.read(512)
    except Exception:  # corrupt compressed data: then it is just a file to copy
        return None
    return kind if _is_tar_header(block) else None


def _is_tar_header(block: bytes) -> bool:
    """A first tar header: a name and a checksum that adds up (the field counts as spaces)."""
    if len(block) < 512 or not block[:100].strip(b"\0"):
        return False
    try:
        recorded = int(block[148:156].strip(b" \0") or b"-1", 8)
    except ValueError:
        return False
    return recorded == sum(block[:148]) + 8 * 32 + sum(block[156:512])


def _open_archive(path: str, kind: str) -> IO[bytes]:
    if kind == "bzip2":
        import bz2

        return bz2.open(path, "rb")
    if kind == "xz":
        import lzma

        return lzma.open(path, "rb")
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    if kind == "gzip":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _extract(copier: Copier, src: Source, dest: str) -> None:
    """Unpack a tar archive into directory ``dest`` with kobako's safe applier (no escapes, no links out)."""
    from kobako.archive.tar import apply_layer

    target = copier.directory(dest)
    kind = _archive(src.host) or "none"
    # gzip, zstd and plain tars go to the applier as they are; it cannot decode bzip2 or xz itself
    with _open_archive(src.host, kind) if kind in ("bzip2", "xz") else open(src.host, "rb") as stream:
        try:
            apply_layer(stream, target, overlay=False, same_owner=True)
        except InvalidArgument as exc:
            raise InvalidArgument(f"ADD {src.rel}: {exc}") from None
