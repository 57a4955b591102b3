"""The OCI process of an ``exec``: the container's own process with the caller's command, tty, env, cwd, user.

Shared by `kobako exec` and the Engine API's exec endpoints, so both build the same process.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.containers import ContainerRecord, ContainerStore


def process_spec(store: ContainerStore, record: ContainerRecord, args: list[str], *, tty: bool = False,
                 env: list[str] | None = None, workdir: str | None = None, user: str | None = None,
                 privileged: bool = False) -> dict:  # fmt: skip
    """``env`` entries are ``K=V`` (a caller resolves bare names); ``user`` is USER[:GROUP] by name or id,
    resolved from the container's /etc files; ``privileged`` gives the process every capability."""
    from kobako import paths
    from kobako.runtime.lifecycle.exec import container_spec, process_from_args

    base = container_spec(paths.runtime_root(), record.id)["process"]
    proc = process_from_args(base, args, tty=tty, cwd=workdir or None, env=list(env or []), user=None, caps=[],
                             no_new_privs=None)  # fmt: skip
    if user:
        from kobako.engine import users

        u = users.resolve(store.rootfs(record.id), user)
        proc["user"] = {
            "uid": u.uid,
            "gid": u.gid,
            **({"additionalGids": u.additional_gids} if u.additional_gids else {}),
        }
    if privileged and "capabilities" in proc:
        from kobako.runtime.security import capabilities as caps

        every = caps.names((1 << (caps.last_cap() + 1)) - 1)
        proc["capabilities"] = {k: list(every) for k in ("bounding", "effective", "permitted")}
    return proc
