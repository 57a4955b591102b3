"""The secure defaults every container starts from: Podman's lists, in one place for review.

Each list says what an unprivileged container may not see or do; ``--privileged`` lifts them (specgen.py).
"""

from __future__ import annotations

# Podman's default_capabilities (containers.conf): no NET_RAW (raw sockets spoof packets), no MKNOD, no
# AUDIT_WRITE. Root in the container gets these; other users get none unless --cap-add names them.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
)  # fmt: skip

# Host information and controls /proc and /sys would leak into a container: kernel memory (kcore), keys,
# timing side channels (timer_list, sched_debug, latency_stats, RAPL energy counters in powercap),
# firmware and block device tables.
MASKED_PATHS = (
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block",
    "/sys/devices/virtual/powercap",
)  # fmt: skip
# Visible but not writable: writing these changes the host kernel, not the container.
READONLY_PATHS = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Podman raises these to its maxima; specgen clamps them to the host's hard limits.
RLIMITS = {"RLIMIT_NOFILE": 1048576, "RLIMIT_NPROC": 4194304}
PIDS_LIMIT = 2048  # Podman's default: a fork bomb stays inside its container
SHM_SIZE = 64 << 20
UMASK = 0o022
# ICMP echo sockets for gid 0 without CAP_NET_RAW (Podman's default_sysctls), in a private netns only.
NETNS_SYSCTLS = {"net.ipv4.ping_group_range": "0 0"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_PARENT = "/kobako"


def base_mounts(privileged: bool, shm_size: int) -> list[dict[str, object]]:
    """The kernel filesystems every container gets, in mount order (parents before children)."""
    ro = "rw" if privileged else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", ro]},
    ]  # fmt: skip
