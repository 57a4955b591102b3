"""Every `kobako` verb and the function that implements it (modules are imported only when used)."""

from __future__ import annotations

from kobako.cli.main import ALIASES, register

# Images (the images issue): kobako.cli.images
# Containers (the images issue): kobako.cli.containers
# Volumes: kobako.cli.volumes
# System: kobako.cli.system

del ALIASES, register
