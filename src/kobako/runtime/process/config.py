"""What the container init needs, prepared by the parent before fork (kept apart from ``init.py`` so
the parent does not import the init's modules: the intermediate imports them while the parent works)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class InitConfig:
    """Everything the init needs, prepared by the parent before fork."""

    def __init__(
        self,
        spec: dict,
        rootfs: str,
        fifo_fd: int,
        console_fd: int,
        no_pivot: bool,
        no_new_keyring: bool,
        preserve_fds: int,
        cgroup_path: str,
        state: dict,
        new_mount_ns: bool,
        new_uts_ns: bool,
    ) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.cgroup_path = cgroup_path
        self.state = state
        self.new_mount_ns = new_mount_ns
        self.new_uts_ns = new_uts_ns
        # Set in the forked child when joining the cgroup can wait until the init needs it.
        self.join_cgroup: Callable[[], None] | None = None
