"""``kobako push``: a local image's blobs (in parallel), then its manifest, to the registry a reference names.

The manifest bytes sent are the ones in the content store, so the pushed digest is the local one. An image
recorded by its index is pushed as that index when every platform manifest it lists is present locally (each
child first); otherwise its platform's manifest alone is pushed.
"""

from __future__ import annotations

from collections import namedtuple

from kobako.errors import InvalidArgument, KobakoError, NotFound
from kobako.oci import image_spec as spec
from kobako.oci.reference import parse_normalized
from kobako.registry.client import hosts, pusher
from kobako.registry.client.progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.images.service import Image, ImageService
    from kobako.registry.client.hosts import Endpoint
    from kobako.registry.client.remote import Remote
    from kobako.registry.client.transport import Transport

#: ``name`` (the destination reference), ``digest`` (of the manifest or index pushed), ``size`` (its bytes)
Pushed = namedtuple("Pushed", "name digest size")


def _manifests(service: ImageService, image: Image) -> list[tuple[dict, bytes, dict]]:
    """(descriptor, bytes, document) of each manifest to push, children before their index."""
    target = image.target
    if target["mediaType"] in spec.INDEX_TYPES:
        index_bytes = service.read_blob(target["digest"])
        index = spec.parse(index_bytes, "index", f"index {target['digest']}")
        children = [d for d in index["manifests"]]
        if all(service.has_blob(d["digest"]) for d in children):
            out = []
            for child in children:
                raw = service.read_blob(child["digest"])
                if child["mediaType"] not in spec.MANIFEST_TYPES:
                    break
                doc = spec.validate_manifest(_loads(raw), f"manifest {child['digest']}", image=False)
                if not all(service.has_blob(b["digest"]) for b in [doc["config"], *doc["layers"]]):
                    break
                out.append((child, raw, doc))
            else:
                return [*out, (target, index_bytes, index)]
    raw = service.read_blob(image.manifest_digest)
    media_type = image.manifest.get("mediaType") or spec.OCI_MANIFEST
    desc = spec.descriptor(media_type, image.manifest_digest, len(raw))
    return [(desc, raw, image.manifest)]


def _loads(raw: bytes) -> object:
    from kobako.oci import jsoncodec

    return jsoncodec.loads(raw, "manifest")


def push(service: ImageService, source: str, destination: str | None = None, *, tls_verify: bool | None = None,
         progress: Progress | None = None, config: dict | None = None, chunk_size: int | None = None,
         transport_factory: Callable[[Endpoint], Transport] | None = None, workers: int = 3) -> Pushed:  # fmt: skip
    from kobako.registry.client.pull import open_remote

    progress = progress or Progress()
    image = service.resolve(source)
    r = parse_normalized(destination or source)
    if r.digest and r.tag:
        raise InvalidArgument(f"{r}: push to a tag or a digest, not both")
    config = hosts.load_config() if config is None else config
    endpoint = hosts.endpoints(r.domain, config, tls_verify, pull=False)[-1]
    remote = open_remote(endpoint, r.domain, transport_factory)
    try:
        progress.message(f"The push refers to repository [{r.name}]")
        manifests = _manifests(service, image)
        blobs: dict[str, dict] = {}
        for _desc, _raw, doc in manifests:
            if "config" in doc:
                for b in [doc["config"], *doc["layers"]]:
                    blobs.setdefault(b["digest"], b)
        _push_blobs(remote, r.path, list(blobs.values()), service, progress, r.domain, chunk_size, workers)
        for desc, raw, _doc in manifests[:-1]:
            pusher.put_manifest(remote, r.path, desc["digest"], raw, desc["mediaType"])
        desc, raw, _doc = manifests[-1]
        reference = r.digest or r.tag
        if r.digest and r.digest != desc["digest"]:
            raise InvalidArgument(f"{r}: the image's manifest is {desc['digest']}")
        digest = pusher.put_manifest(remote, r.path, reference, raw, desc["mediaType"])
    finally:
        remote.close()
    for d in blobs:
        try:
            pusher.add_source(service.content, d, r.domain, r.path)
        except KobakoError:
            pass  # only a hint for later mounts
    progress.message(f"{reference}: digest: {digest} size: {len(raw)}")
    return Pushed(str(r), digest, len(raw))


def _push_blobs(remote: Remote, repo: str, blobs: list[dict], service: ImageService, progress: Progress,
                domain: str, chunk_size: int | None, workers: int) -> None:  # fmt: skip
    for b in blobs:
        if not service.has_blob(b["digest"]):
            raise NotFound(f"blob {b['digest']} of the image is missing from the content store")
    for b in blobs:
        progress.status(b["digest"], "Preparing")
    if workers <= 1 or len(blobs) <= 1:
        for b in blobs:
            pusher.push_blob(remote, repo, b, service.content, progress, domain, chunk_size)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(blobs)), thread_name_prefix="push") as pool:
        futures = [pool.submit(pusher.push_blob, remote, repo, b, service.content, progress, domain, chunk_size)
                   for b in blobs]  # fmt: skip
        errors = [f.exception() for f in futures]
    for exc in errors:
        if exc is not None:
            raise exc
