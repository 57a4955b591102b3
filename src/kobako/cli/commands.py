"""Every `kobako` verb and the function that implements it (modules are imported only when used).

Each function takes the verb's remaining argv (list[str]) and returns an exit code.
"""

from __future__ import annotations

from kobako.cli.main import register

_IMAGES = "kobako.cli.images"
_CONTAINERS = "kobako.cli.containers"
_VOLUMES = "kobako.cli.volumes"
_SYSTEM = "kobako.cli.system"

# Images
for verb, fn in {"import": "cmd_import", "load": "cmd_load", "save": "cmd_save", "images": "cmd_images",
                 "tag": "cmd_tag", "rmi": "cmd_rmi", "history": "cmd_history"}.items():  # fmt: skip
    register(verb, f"{_IMAGES}:{fn}")
for verb, fn in {"import": "cmd_import", "load": "cmd_load", "save": "cmd_save", "ls": "cmd_images",
                 "list": "cmd_images", "tag": "cmd_tag", "rm": "cmd_rmi", "history": "cmd_history",
                 "inspect": "cmd_image_inspect", "prune": "cmd_image_prune"}.items():  # fmt: skip
    register(verb, f"{_IMAGES}:{fn}", group="image")

# Containers
for verb in ("run", "create", "start", "stop", "kill", "restart", "rm", "ps", "logs", "exec", "inspect", "wait",
             "stats", "top", "cp", "rename", "port", "pause", "unpause"):  # fmt: skip
    register(verb, f"{_CONTAINERS}:cmd_{verb}")
for verb in ("run", "create", "start", "stop", "kill", "restart", "rm", "ls", "list", "logs", "exec", "inspect",
             "wait", "stats", "top", "cp", "rename", "prune"):  # fmt: skip
    register(verb, f"{_CONTAINERS}:cmd_{'ps' if verb in ('ls', 'list') else verb}", group="container")

# Volumes
for verb in ("create", "ls", "list", "inspect", "rm", "prune"):
    register(verb, f"{_VOLUMES}:cmd_{'ls' if verb == 'list' else verb}", group="volume")

# System
for verb in ("df", "check", "prune", "info"):
    register(verb, f"{_SYSTEM}:cmd_{verb}", group="system")
register("info", f"{_SYSTEM}:cmd_info")
register("service", "kobako.cli.service:cmd_service", group="system")

# Registry (client and server)
_REGISTRY = "kobako.cli.registry"
for verb in ("pull", "push", "login", "logout"):
    register(verb, f"{_REGISTRY}:cmd_{verb}")
for verb in ("pull", "push"):
    register(verb, f"{_REGISTRY}:cmd_{verb}", group="image")
for verb in ("serve", "gc"):
    register(verb, f"{_REGISTRY}:cmd_{verb}", group="registry")

# Build
register("build", "kobako.cli.build:cmd_build")
register("build", "kobako.cli.build:cmd_build", group="image")

# Networks
for verb in ("create", "ls", "list", "inspect", "rm", "prune", "connect", "disconnect"):
    register(verb, f"kobako.cli.network:cmd_{'ls' if verb == 'list' else verb}", group="network")
