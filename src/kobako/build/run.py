"""RUN: the command (shell or exec form, here-documents), its cache key, and its layer.

Shell form runs under the image's SHELL (``/bin/sh -c`` by default). A RUN that is only a here-document
runs its body as the script (a body starting with ``#!`` is written to a file and executed, so its
interpreter runs it); a command with here-documents is handed to the shell with the bodies, which then
does the redirections (BuildKit's behaviour). The environment is the image's Env plus the build arguments
in scope that no ENV hides; history records them as ``|N K=V`` like Docker.
"""

from __future__ import annotations

import os

from kobako.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.dockerfile.ast import Instruction
    from kobako.build.session import Session, Step
    from kobako.build.state import StageState

DEFAULT_SHELL = ["/bin/sh", "-c"]
_SCRIPT = "/.kobako-build-script"


class RunFailed(FailedPrecondition):
    """A RUN command exited non-zero: ``exit_status`` and ``output`` (its last bytes) are kept."""

    def __init__(self, message: str, exit_status: int, output: bytes) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.output = output


def command(ins: Instruction, state: StageState) -> tuple[list[str], bytes | None]:
    """(argv, script body to install at /.kobako-build-script or None)."""
    shell = list(state.section.get("Shell") or DEFAULT_SHELL)
    if ins.json:
        if not ins.args:
            raise InvalidArgument("RUN [] has no command to run")
        return list(ins.args), None
    text = ins.args[0] if ins.args else ""
    if ins.heredocs:
        doc = ins.heredocs[0]
        only = text.strip().lstrip("0123456789").startswith("<<") and len(text.split()) == 1
        if only and len(ins.heredocs) == 1:
            if doc.content.startswith("#!"):
                return [_SCRIPT], doc.content.encode()
            return [*shell, doc.content], None
        full = text + "\n" + "".join(f"{d.content}{d.name}\n" for d in ins.heredocs)
        return [*shell, full], None
    return [*shell, text], None


def created_by(argv: list[str], args: dict[str, str]) -> str:
    prefix = f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in sorted(args.items())) + " " if args else ""
    return "RUN " + prefix + " ".join(argv)


def prepare(session: Session, ins: Instruction, state: StageState) -> Step:
    from kobako.build.dockerfile.expand import process_word
    from kobako.build.runmounts import MountSet, parse_mount
    from kobako.build.session import Step

    network = ins.flag("network")
    if network not in (None, "", "none", "default"):
        raise FailedPrecondition(f"RUN --network={network}: kobako builds run without a network")
    if (ins.flag("security") or "sandbox") != "sandbox":
        raise FailedPrecondition("RUN --security=insecure is not supported")
    env_vars = state.expansion_env()
    mounts = [parse_mount(process_word(v, env_vars, session.escape)) for v in ins.flags.get("mount", [])]
    argv, script = command(ins, state)
    args = state.run_args()
    env = list(state.section.get("Env") or []) + [f"{k}={v}" for k, v in sorted(args.items())]
    user = str(state.section.get("User") or "")
    workdir = str(state.section.get("WorkingDir") or "/")
    mount_set = MountSet(session, mounts, workdir, "")
    key = ["RUN", argv, script.decode(errors="replace") if script else None, env, user, workdir,
           mount_set.key_parts(state)]  # fmt: skip

    env_names = {e.partition("=")[0] for e in env}
    proxies = [f"{k}={v}" for k, v in session.proxy_args.items() if k not in env_names]

    def apply(new: StageState) -> None:
        _run(session, ins, new, argv, script, env + proxies, user, workdir, mounts)
        empty = len(new.layers) == len(state.layers)
        new.add_history(created_by(argv, args), empty_layer=empty)

    return Step(key, apply)


def _run(session: Session, ins: Instruction, state: StageState, argv: list[str], script: bytes | None,
         env: list[str], user: str, workdir: str, mounts: list) -> None:  # fmt: skip
    import secrets
    import shutil

    from kobako.build import container
    from kobako.build.layers import unique_name
    from kobako.build.runmounts import MountSet

    ws = session.layers.workspace(state)
    run_dir = os.path.join(session.state_root, "build", "run", unique_name("run"))
    os.makedirs(run_dir, 0o700)
    mount_set = MountSet(session, mounts, workdir, run_dir)
    try:
        rootfs = ws.open()
        _ensure_workdir(rootfs, workdir, user)
        if script is not None:
            _install_script(rootfs, script)
        cid = secrets.token_hex(32)
        bundle = os.path.join(run_dir, "bundle")
        os.makedirs(bundle)
        spec = container.spec_for(cid, rootfs, argv, env, user, workdir, mount_set.spec_mounts(),
                                  os.path.join(run_dir, "userdata"))  # fmt: skip
        points = container.MountPoints(rootfs, spec["mounts"])
        code, tail = container.run(session.runtime_root, cid, bundle, spec, session.out.raw)
        mount_set.release()
        if script is not None:
            _remove_script(rootfs)
        made_in = points.remove()
        if code != 0:
            shown = "" if not session.out.quiet else "\n" + tail.decode(errors="replace").rstrip()
            raise RunFailed(f"{session.where(ins)}: {ins.original.splitlines()[0]}: the command exited with "
                            f"code {code}{shown}", code, tail)  # fmt: skip
        ws.unmount()
        if ws.mounts[0].type == "overlay":
            from kobako.archive.whiteout import overlay_xattr

            container.prune_copied_up(ws.upper or "", ws.lowers, made_in, overlay_xattr("opaque"))
        ws.commit(state)
    finally:
        try:
            mount_set.release()
        finally:
            try:
                ws.close()
            finally:
                shutil.rmtree(run_dir, ignore_errors=True)


def _ensure_workdir(rootfs: str, workdir: str, user: str) -> None:
    """The working directory must exist for the runtime to chdir: make it (owned by USER), as buildah."""
    from kobako.runtime.securepath import resolve

    if os.path.isdir(resolve(rootfs, workdir)):
        return
    make_dirs(rootfs, workdir, owner_of(rootfs, user))


def owner_of(rootfs: str, user: str) -> tuple[int, int]:
    """uid and gid of USER in this root filesystem; root when it cannot be resolved."""
    if not user:
        return 0, 0
    from kobako.engine import users
    from kobako.errors import KobakoError

    try:
        u = users.resolve(rootfs, user)
    except KobakoError:
        return 0, 0
    return u.uid, u.gid


def make_dirs(rootfs: str, path: str, owner: tuple[int, int], mode: int = 0o755) -> list[str]:
    """``mkdir -p`` of a container path inside ``rootfs`` (symlinks resolved in scope); new ones are
    owned by ``owner``. Returns the host paths made."""
    from kobako.runtime.securepath import resolve

    made = []
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        host = resolve(rootfs, current)
        if os.path.isdir(host):
            continue
        if os.path.lexists(host):
            raise InvalidArgument(f"cannot make directory {current}: a file is in the way")
        os.mkdir(host, mode)
        os.chmod(host, mode)
        os.chown(host, *owner, follow_symlinks=False)
        made.append(host)
    return made


def _install_script(rootfs: str, script: bytes) -> None:
    path = os.path.join(rootfs, _SCRIPT.lstrip("/"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
    try:
        os.write(fd, script)
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)


def _remove_script(rootfs: str) -> None:
    try:
        os.unlink(os.path.join(rootfs, _SCRIPT.lstrip("/")))
    except OSError:
        pass  # the command removed or replaced it: what it left is its result
