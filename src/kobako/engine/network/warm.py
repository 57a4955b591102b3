"""Imported by the monitor's preload for a networked container (``monitor_net.PRELOAD``), while the CLI
still prepares it: loads libnftables (its dlopen and relocations, with libnftnl, libmnl, libjansson...,
cost ~10 ms), which the setup after go would otherwise pay on the container's critical path. Nothing else:
the netlink requests of a setup need no pyroute2 (see netlink.py)."""

from __future__ import annotations

from kobako.engine.network import nftables

nftables.preload()
