"""The built image into kobako's store: config and manifest blobs, then names (or a dangling record).

The caller holds the GC lock shared (the layers are referenced by no image until the record exists).
Nothing is named before every blob is written, so a failed build tags nothing.
"""

from __future__ import annotations

import json
import os

from kobako.oci import image_spec as spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.state import StageState
    from kobako.images.service import ImageService


def final_config(state: StageState, labels: dict[str, str]) -> dict:
    config = json.loads(json.dumps(state.config))
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    section = config.setdefault("config", {})
    if labels:
        section["Labels"] = {**(section.get("Labels") or {}), **labels}
    if not section.get("OnBuild"):
        section.pop("OnBuild", None)
    if "created" not in config:
        from kobako.build.state import rfc3339

        config["created"] = rfc3339()
    return config


def write_image(service: ImageService, state: StageState, names: list[str], labels: dict[str, str]) -> str:
    """Store the image of ``state`` and point ``names`` at it; return its ID (the config digest)."""
    from kobako.images.archive import put_bytes

    config = final_config(state, labels)
    spec.validate_config(config, "built image config")
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    ref = f"build-{os.getpid()}"
    content = service.content
    config_digest = str(put_bytes(content, config_bytes, ref + "-config"))
    manifest = {"schemaVersion": 2, "mediaType": spec.OCI_MANIFEST,
                "config": spec.descriptor(spec.OCI_CONFIG, config_digest, len(config_bytes)),
                "layers": state.layers}  # fmt: skip
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    digest = put_bytes(content, manifest_bytes, ref + "-manifest")
    target = spec.descriptor(spec.OCI_MANIFEST, digest, len(manifest_bytes))
    if names:
        for name in names:
            service.store.set(name, target, config_digest)
    else:
        service.store.add_dangling(target, config_digest)
    return config_digest
