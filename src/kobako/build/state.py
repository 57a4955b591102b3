"""The state of a stage while it is built: the image config so far, its layers, and the build variables.

``config`` is a whole OCI image config (``config`` section, ``rootfs.diff_ids``, ``history``...);
``layers`` the layer descriptors in order; ``key`` the cache key of the last step. ``args`` (ARG values in
scope) and ``cmd_set`` (whether this stage set CMD, which decides if ENTRYPOINT clears an inherited one) are
not part of the image and are never cached: every build recomputes them.
"""

from __future__ import annotations

import copy
import time

from kobako.oci import image_spec as spec

# BuildKit puts a PATH in every stage's environment when the image has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DOCKER_TO_OCI = {spec.DOCKER_LAYER: spec.OCI_LAYER, spec.DOCKER_LAYER_GZIP: spec.OCI_LAYER_GZIP,
                  spec.DOCKER_LAYER_ZSTD: spec.OCI_LAYER_ZSTD}  # fmt: skip


def rfc3339(t: float | None = None) -> str:
    ns = time.time_ns() if t is None else int(t * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class StageState:
    __slots__ = ("args", "cmd_set", "config", "key", "layers")

    def __init__(self, config: dict, layers: list[dict], key: str) -> None:
        self.config = config
        self.layers = layers
        self.key = key
        self.args: dict[str, str] = {}
        self.cmd_set = False

    @classmethod
    def scratch(cls, platform: dict, key: str) -> StageState:
        config = {"architecture": platform["architecture"], "os": platform["os"],
                  "config": {"Env": [f"PATH={DEFAULT_PATH}"]}, "rootfs": {"type": "layers", "diff_ids": []},
                  "history": []}  # fmt: skip
        if platform.get("variant"):
            config["variant"] = platform["variant"]
        return cls(config, [], key)

    @classmethod
    def from_image(cls, config: dict, layers: list[dict], key: str) -> StageState:
        config = copy.deepcopy(config)
        config.setdefault("config", {})
        config.setdefault("history", [])
        section = config["config"]
        if not any(e.partition("=")[0] == "PATH" for e in section.get("Env") or []):
            section["Env"] = [*(section.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        oci_layers = []
        for layer in layers:
            layer = {k: layer[k] for k in ("mediaType", "digest", "size", "annotations") if k in layer}
            layer["mediaType"] = _DOCKER_TO_OCI.get(layer["mediaType"], layer["mediaType"])
            oci_layers.append(layer)
        return cls(config, oci_layers, key)

    def derive(self, key: str) -> StageState:
        """A copy to change for the next step (the variables come along)."""
        new = StageState(copy.deepcopy(self.config), list(self.layers), key)
        new.args = dict(self.args)
        new.cmd_set = self.cmd_set
        return new

    def adopt(self, doc: dict, key: str) -> StageState:
        """The state a cached step recorded, with this state's variables."""
        new = StageState(doc["config"], doc["layers"], key)
        new.args = dict(self.args)
        new.cmd_set = self.cmd_set
        return new

    def to_doc(self) -> dict:
        return {"config": self.config, "layers": self.layers}

    # -- views -------------------------------------------------------------------------------------------

    @property
    def section(self) -> dict:
        return self.config.setdefault("config", {})

    @property
    def diff_ids(self) -> list[str]:
        return self.config.setdefault("rootfs", {"type": "layers", "diff_ids": []}).setdefault("diff_ids", [])

    @property
    def top(self) -> str:
        """Chain ID of the top layer ("" when there is none)."""
        chain = spec.chain_ids(self.diff_ids)
        return chain[-1] if chain else ""

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for entry in self.section.get("Env") or []:
            key, _, value = entry.partition("=")
            out[key] = value
        return out

    def expansion_env(self) -> dict[str, str]:
        """Variables for ``$VAR`` in instructions: build arguments, then ENVs (which win over ARGs)."""
        return {**self.args, **self.env()}

    def run_args(self) -> dict[str, str]:
        """Build arguments a RUN sees in its environment (those an ENV of the same name does not hide)."""
        env = self.env()
        return {k: v for k, v in self.args.items() if k not in env}

    def set_env(self, key: str, value: str) -> None:
        env = [e for e in self.section.get("Env") or [] if e.partition("=")[0] != key]
        old = self.section.get("Env") or []
        pos = next((i for i, e in enumerate(old) if e.partition("=")[0] == key), None)
        if pos is None:
            env.append(f"{key}={value}")
        else:
            env.insert(pos, f"{key}={value}")
        self.section["Env"] = env

    # -- changes -----------------------------------------------------------------------------------------

    def add_history(self, created_by: str, *, empty_layer: bool, comment: str = "") -> None:
        now = rfc3339()
        entry: dict[str, object] = {"created": now, "created_by": created_by}
        if comment:
            entry["comment"] = comment
        if empty_layer:
            entry["empty_layer"] = True
        self.config.setdefault("history", []).append(entry)
        self.config["created"] = now

    def add_layer(self, descriptor: dict, diff_id: str) -> None:
        self.layers.append(descriptor)
        self.diff_ids.append(diff_id)
