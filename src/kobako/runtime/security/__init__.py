"""Process-security primitives the container init applies right before execve.

* :mod:`.capabilities` — bounding/effective/permitted/inheritable/ambient sets (capget, capset, prctl)
* :mod:`.seccomp` — OCI ``linux.seccomp`` → BPF filter (libseccomp as the compiler), load
* :mod:`.default_seccomp` — kobako's default profile (Docker/Podman equivalent)
* :mod:`.nonewprivs` — no_new_privs and the dumpable flag

Importing any of them is cheap: ctypes and libseccomp are loaded on first use. The init must make
that first use happen before it enters the container's root (a later import or dlopen would read
the image's files): it calls :func:`preload`, or :func:`.seccomp.build`, beforehand. After
pivot_root, anything not loaded yet is refused with :class:`~kobako.errors.FailedPrecondition`.
"""

from __future__ import annotations


def preload(seccomp: bool = True) -> None:
    """Load from the host everything the primitives use later: the libc binding, the last capability
    number and, with ``seccomp``, the seccomp module and libseccomp. Call before pivot_root."""
    from kobako import libc  # noqa: F401
    from kobako.runtime.security import _libc, capabilities

    capabilities.last_cap()
    if seccomp:
        from kobako.runtime.security import seccomp as seccomp_module  # noqa: F401

        _libc.host_module("kobako.runtime.security._libseccomp").binding()
