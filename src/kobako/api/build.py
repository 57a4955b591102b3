"""``POST /build``: the classic builder's endpoint. The body is the context as a tar (plain, gzip or zstd).

The context is unpacked with the layer applier's containment rules (no ``..``, nothing through symlinks, no
devices) into a private directory, then `kobako build` runs on it in a child process: the builder forks the
runtime for RUN steps, which must not happen in this threaded process. Its output lines become
``{"stream": ...}`` messages; the image ID arrives as ``{"aux": {"ID": ...}}`` and "Successfully built".
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys

from kobako.api.bridge import BodyReader
from kobako.api.http import HTTPError, Request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service

_MAX_CONTEXT = 16 << 30


def _json_map(req: Request, name: str) -> dict[str, str]:
    raw = req.arg(name)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise HTTPError(400, f"invalid {name}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise HTTPError(400, f"invalid {name}: want a JSON object of strings")
    return {k: "" if v is None else str(v) for k, v in data.items()}


def _dockerfile(req: Request) -> str:
    name = req.arg("dockerfile") or "Dockerfile"
    norm = os.path.normpath(name)
    if norm.startswith(("/", "..")) or "\x00" in name:
        raise HTTPError(400, f"invalid dockerfile {name!r}: it must be a path inside the build context")
    return norm


def _kobako() -> list[str]:
    launcher = os.path.join(os.path.dirname(sys.executable), "kobako")
    if os.access(launcher, os.X_OK):
        return [launcher]
    return [sys.executable, "-c", "from kobako.cli.main import run_and_exit; run_and_exit()"]


async def build(svc: Service, req: Request) -> None:
    from kobako import paths

    if req.arg("remote"):
        raise HTTPError(400, "remote build contexts are not supported: send the context as the body")
    dockerfile = _dockerfile(req)
    args = ["build", "--iidfile", "IIDFILE"]
    for tag in req.query.get("t", []):
        if not tag or tag.startswith("-"):
            raise HTTPError(400, f"invalid tag {tag!r}")
        args += ["--tag", tag]
    for key, value in _json_map(req, "buildargs").items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in _json_map(req, "labels").items():
        args += ["--label", f"{key}={value}"]
    if req.arg("target"):
        args += ["--target", req.arg("target")]
    if req.flag("nocache"):
        args.append("--no-cache")
    if req.flag("pull"):
        args.append("--pull")
    if req.arg("platform"):
        args += ["--platform", req.arg("platform")]
    work = os.path.join(paths.run_root(), "build", os.urandom(8).hex())
    context = os.path.join(work, "context")
    os.makedirs(context, mode=0o700)
    try:
        await _run(svc, req, work, context, dockerfile, args)
    finally:
        await svc.run(shutil.rmtree, work, True)


async def _run(svc: Service, req: Request, work: str, context: str, dockerfile: str, args: list[str]) -> None:
    from kobako.archive.tar import apply_layer

    loop = asyncio.get_running_loop()
    if req.has_body:
        await svc.run(apply_layer, BodyReader(req, loop, _MAX_CONTEXT), context, same_owner=False)
    iidfile = os.path.join(work, "iid")
    args = [iidfile if a == "IIDFILE" else a for a in args]
    args += ["--file", os.path.join(context, dockerfile), context]
    stream = svc.stream(req)
    await stream.start()

    async def send(item: dict) -> None:
        await stream.send(json.dumps(item, separators=(",", ":")).encode() + b"\r\n")

    proc = await asyncio.create_subprocess_exec(*_kobako(), *args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                cwd=work)  # fmt: skip
    errors: list[str] = []

    async def read_err() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            text = line.decode(errors="replace")
            errors.append(text)
            if text.startswith("WARNING"):
                await send({"stream": text})

    err_job = loop.create_task(read_err())
    try:
        assert proc.stdout is not None
        async for line in proc.stdout:
            await send({"stream": line.decode(errors="replace")})
        await err_job
        code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if code != 0:
        text = "".join(e for e in errors if not e.startswith("WARNING")).strip() or f"build failed ({code})"
        text = text.removeprefix("kobako: ")
        await send({"errorDetail": {"code": code, "message": text}, "error": text})
    else:
        with open(iidfile) as f:
            image_id = f.read().strip()
        await send({"aux": {"ID": image_id}})
        await send({"stream": f"Successfully built {image_id.partition(':')[2][:12]}\n"})
        for tag in req.query.get("t", []):
            await send({"stream": f"Successfully tagged {tag}\n"})
        svc.events.emit("image", "build", image_id, {"name": ",".join(req.query.get("t", []))})
    await stream.close()


ROUTES = [("POST", "/build", build)]
