"""Differential: the same Dockerfiles built by ``buildah bud`` and by ``kobako build`` give the same files (paths,
types, modes, owners, contents: the flattened image) and the same config (Env, Cmd, Entrypoint, WorkingDir,
User, ExposedPorts, Labels, Volumes, StopSignal). Both start from the same busybox rootfs, imported with
``podman import`` and ``kobako import``. buildah and podman share one isolated storage (kobako.testing.podman);
buildah runs with runc, cgroupfs, network none, ``--layers``. Then a kobako-built image goes through
``kobako save | podman load`` and runs under podman.

Known differences, filtered here: buildah 1.28 leaves the mount points ``/etc/hostname`` and ``/run`` in the
image, and labels it ``io.buildah.version``. buildah 1.28 has no here-documents, so none are used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.podman import Podman

pytestmark = [pytest.mark.root, pytest.mark.interop]

KOBAKO = str(Path(sys.executable).parent / "kobako")
BASE = "localhost/busybox:latest"
PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILDAH_ONLY = {"etc/hostname", "run"}  # mount points buildah 1.28 leaves behind
CONFIG_KEYS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "StopSignal",
)


def _gz_tar(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(text), 0o640, 7, 8, 1_600_000_000
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


CASES: dict[str, tuple[str, dict[str, str | bytes]]] = {
    "single-stage": (
        f"FROM {BASE}\nENV APP=/app GREETING=\"hello world\" PLAIN=Rex\\ The\\ Dog\nWORKDIR $APP\nCOPY hello.txt ./\n"
        "RUN cat hello.txt > copy.txt && echo \"$GREETING\" >> copy.txt && mkdir -p /var/lib/app\n"
        'EXPOSE 8080 53/udp\nLABEL org.example.name="demo app" version=1\nVOLUME /data\nSTOPSIGNAL SIGINT\n'
        'USER nobody\nENTRYPOINT ["/bin/cat"]\nCMD ["/app/copy.txt"]\n',
        {"hello.txt": "hi there\n"},
    ),
    "multi-stage": (
        f"FROM {BASE} AS build\nRUN mkdir /out && echo artifact > /out/a && echo other > /out/b && chmod 700 /out/b\n"
        f"FROM {BASE} AS unused\nRUN exit 7\n"
        f"FROM {BASE}\nCOPY --from=build /out /opt/\nCOPY --from=build /out/a /single\nCOPY --from=0 /out/b /b\n"
        'CMD ["cat", "/opt/a"]\n',
        {},
    ),
    "whiteouts": (
        f"FROM {BASE}\nRUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo 2 > /d/keep && echo 3 > /gone\n"
        "RUN rm /gone /bin/vi && rm -rf /d/sub\nRUN rm -rf /d && mkdir /d && echo new > /d/only\n"
        "RUN rm -rf /tmp && mkdir -m 1777 /tmp && touch /tmp/x\n",
        {},
    ),
    "copy-semantics": (
        f"FROM {BASE}\nCOPY --chown=65534:65534 --chmod=0750 src /src/\nCOPY --chown=1000 src/a /one/two/named\n"
        "COPY src /plain\nCOPY src/a src/b /multi/\nCOPY --chown=nobody:nogroup src /byname/\n"
        "COPY --chmod=640 src/d /chm\nRUN mkdir -p /exist/d && chmod 700 /exist /exist/d\nCOPY src /exist/\n"
        "COPY src/*.txt /glob/\nCOPY link-to-a /followed\nCOPY src/d/../a /cleaned\n",
        {"src/a": "a\n", "src/b": "b\n", "src/d/c": "c\n", "src/x.txt": "x", "src/y.txt": "y", "link-to-a": ""},
    ),
    "add-and-ignore": (
        f"FROM {BASE}\nADD app.tar.gz /opt/app/\nADD plain.txt /opt/\nCOPY . /ctx/\n",
        {"app.tar.gz": _gz_tar({"bin/tool": "tool", "README": "readme"}), "plain.txt": "plain",
         ".dockerignore": "*.md\n!README.md\nsecret/\n**/*.tmp\n", "README.md": "r", "NOTES.md": "n",
         "secret/key": "k", "src/a.tmp": "t", "src/a.c": "c"},
    ),
    "args-and-env": (
        "ARG BASE=localhost/busybox\nARG VERSION=1.0\nFROM ${BASE}:latest\nARG VERSION\nARG ONLY_HERE=default\n"
        "ARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0 FROM_ARG=${VERSION}\n"
        "RUN echo \"$VERSION $ONLY_HERE $CONT_IMG_VER\" > /args.txt\nWORKDIR /w\nRUN pwd > /w/pwd\n"
        "USER nobody\nRUN id -u > /tmp/uid\nUSER root\n",
        {},
    ),
}  # fmt: skip
BUILD_ARGS = ["--build-arg", "VERSION=2.0", "--build-arg", "CONT_IMG_VER=v2.0.1"]
# a path each case must produce, so an empty comparison cannot pass
EXPECT = {"single-stage": "app/copy.txt", "multi-stage": "opt/b", "whiteouts": "d/only", "copy-semantics": "exist/d/c",
          "add-and-ignore": "opt/app/bin/tool", "args-and-env": "w/pwd"}  # fmt: skip


def flatten(archive: Path) -> tuple[dict[str, tuple], dict]:
    """The file tree a docker-archive's layers make (whiteouts applied), and the image config."""
    tree: dict[str, tuple] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        for name in manifest["Layers"]:
            data = outer.extractfile(name).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer:
                for e in layer:
                    path = os.path.normpath(e.name).lstrip("/")
                    if path in (".", ""):
                        continue
                    parent, base = os.path.split(path)
                    if base == ".wh..wh..opq":
                        for k in [k for k in tree if k.startswith(parent + "/")]:
                            del tree[k]
                        continue
                    if base.startswith(".wh."):
                        gone = os.path.join(parent, base[4:])
                        for k in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                            del tree[k]
                        continue
                    if e.isdir():
                        kind, content = "dir", ""
                    elif e.issym():
                        kind, content = "symlink", e.linkname
                    elif e.islnk():
                        kind, content = "file", tree.get(os.path.normpath(e.linkname), ("", 0, 0, 0, ""))[4]
                    elif e.isreg():
                        kind = "file"
                        content = hashlib.sha256(layer.extractfile(e).read()).hexdigest()  # type: ignore[union-attr]
                    else:
                        kind, content = "special", f"{e.type!r} {e.devmajor},{e.devminor}"
                    tree[path] = (kind, oct(e.mode & 0o7777), e.uid, e.gid, content)
    return tree, config


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[tuple[Podman, Path]]:
    for tool in ("buildah", "podman", "runc", "conmon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    # podman refuses a run root longer than 50 characters: pytest's temporary paths are too long
    base = Path(tempfile.mkdtemp(prefix="kobako-bd-"))
    archive = base / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(str(busybox_rootfs), arcname=".")
    pm = Podman(base / "podman")
    root = base / "kobako"
    try:
        pm("import", "--change", 'CMD ["sh"]', "--change", PATH_ENV, str(archive), BASE)
        kobako(root, "import", "--change", 'CMD ["sh"]', "--change", PATH_ENV, str(archive), BASE)
        yield pm, root
    finally:
        left = pm.close()
        from kobako.mount import mounted_under, unmount_all

        if mounted_under(root):
            unmount_all(root, detach=True)
        shutil.rmtree(base, ignore_errors=True)
    assert not left, f"left behind by podman/buildah: {left}"


def kobako(root: Path, *args: str) -> str:
    proc = subprocess.run([KOBAKO, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "KOBAKO_ROOT": str(root)})  # fmt: skip
    assert proc.returncode == 0, f"kobako {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def buildah_bud(pm: Podman, context: Path, tag: str, *extra: str) -> None:
    cmd = ["buildah", "--root", str(pm.storage), "--runroot", str(pm.runroot), "--storage-driver", pm.driver,
           "bud", "--layers", "--isolation", "oci", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
           "--cgroup-parent", pm.cgroup_parent, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
           "--network", "none", "--pull=never", *extra, "-t", tag, str(context)]  # fmt: skip
    proc = subprocess.run(cmd, env=pm.env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"buildah bud: {proc.stderr}"


def _context(base: Path, dockerfile: str, files: dict[str, str | bytes]) -> Path:
    ctx = base / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for rel, content in files.items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == "link-to-a":
            os.symlink("src/a", path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (ctx / "src").exists() and os.chmod(ctx / "src", 0o700)
    if (ctx / "src" / "a").exists():
        os.chmod(ctx / "src" / "a", 0o600)
    if (ctx / "src" / "d").exists():
        os.chmod(ctx / "src" / "d", 0o711)
    return ctx


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_files_and_config_as_buildah(peers: tuple[Podman, Path], tmp_path: Path, case: str) -> None:
    pm, root = peers
    dockerfile, files = CASES[case]
    ctx = _context(tmp_path, dockerfile, files)
    tag = f"localhost/diff-{case}:latest"
    extra = BUILD_ARGS if case == "args-and-env" else []
    buildah_bud(pm, ctx, tag, *extra)
    kobako(root, "build", "-q", *extra, "-t", tag, str(ctx))
    pm("save", "--format", "docker-archive", "-o", str(tmp_path / "buildah.tar"), tag)
    kobako(root, "save", "-o", str(tmp_path / "kobako.tar"), tag)
    theirs, their_config = flatten(tmp_path / "buildah.tar")
    ours, our_config = flatten(tmp_path / "kobako.tar")
    for path in BUILDAH_ONLY:
        if path not in ours:
            theirs.pop(path, None)
    assert "bin/busybox" in ours and EXPECT[case] in ours
    differ = {
        p: (theirs.get(p), ours.get(p))
        for p in sorted(set(theirs) | set(ours))
        if theirs.get(p) != ours.get(p)
    }
    assert differ == {}, f"buildah vs kobako: {json.dumps(differ, indent=1)}"
    for key in CONFIG_KEYS:
        want = their_config["config"].get(key) or None
        if key == "Labels" and want:
            want = {k: v for k, v in want.items() if k != "io.buildah.version"} or None
        if key == "User" and want == "root" and not our_config["config"].get(key):
            want = None  # buildah records the default user explicitly
        assert (our_config["config"].get(key) or None) == want, key


def test_kobako_image_loads_and_runs_in_podman(peers: tuple[Podman, Path], tmp_path: Path) -> None:
    pm, root = peers
    ctx = _context(tmp_path, f"FROM {BASE}\nCOPY msg /msg\nRUN echo built >> /msg\nCMD [\"cat\", \"/msg\"]\n",
                   {"msg": "from kobako\n"})  # fmt: skip
    kobako(root, "build", "-q", "-t", "localhost/kobako-built:1", str(ctx))
    archive = tmp_path / "out.tar"
    kobako(root, "save", "-o", str(archive), "localhost/kobako-built:1")
    pm("load", "-i", str(archive))
    out = pm("run", "--rm", "--runtime", "runc", *pm.run_flags(), "localhost/kobako-built:1").stdout
    assert out == "from kobako\nbuilt\n"
