"""Image archives built by hand for tests: in-memory tars, small layers, docker and OCI archives.

Imported by path (``sys.path``) from the image tests, which run in pytest's importlib mode.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def make_tar(members: list[tuple]) -> bytes:
    """members: (name, data) files, (name, None) dirs, (name, "->", target) symlinks, (name, "=>", target)
    hardlinks, (name, "chr") a character device."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m[0])
            if len(m) == 3:
                info.type = tarfile.SYMTYPE if m[1] == "->" else tarfile.LNKTYPE
                info.linkname = m[2]
                tar.addfile(info)
            elif m[1] is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif m[1] == "chr":
                info.type = tarfile.CHRTYPE
                tar.addfile(info)
            else:
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> bytes:
    return make_tar([(name, data) for name, data in files.items()])


def config_for(layers: list[bytes], **extra: object) -> bytes:
    doc = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}, **extra}  # fmt: skip
    return json.dumps(doc).encode()


def docker_archive(layers: list[bytes], tags: list[str] | None, config: bytes | None = None) -> bytes:
    config = config if config is not None else config_for(layers)
    members = [(sha(x)[7:] + ".tar", x) for x in layers]
    members.append((sha(config)[7:] + ".json", config))
    manifest = [
        {"Config": sha(config)[7:] + ".json", "RepoTags": tags, "Layers": [m[0] for m in members[:-1]]}
    ]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    return make_tar(members)


def oci_archive(layers: list[bytes], ref_name: str | None, config: bytes | None = None,
                tamper: dict | None = None) -> bytes:  # fmt: skip
    config = config if config is not None else config_for(layers)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(x),
                            "size": len(x)} for x in layers]}  # fmt: skip
    for key, value in (tamper or {}).items():
        manifest[key] = value
    mbytes = json.dumps(manifest).encode()
    desc = {"mediaType": manifest["mediaType"], "digest": sha(mbytes), "size": len(mbytes)}
    if ref_name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    members: list[tuple] = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                            ("index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())]  # fmt: skip
    for blob in [*layers, config, mbytes]:
        members.append(("blobs/sha256/" + sha(blob)[7:], blob))
    return make_tar(members)
