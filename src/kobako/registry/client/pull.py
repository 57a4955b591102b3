"""``kobako pull``: resolve (mirrors first), fetch config and layers in parallel into the content store, then
record and unpack the image as ``kobako load`` does.

The GC lock is held shared from the first blob to the image record, so a concurrent ``kobako system prune``
cannot sweep blobs that no record names yet. The record's target is the index when the reference named one and
the platform chosen is this host's (so ``kobako run name@<index digest>`` works and a later ``push`` can send
the same digest), the platform's manifest otherwise.
"""

from __future__ import annotations

from collections import namedtuple

from kobako.errors import InvalidArgument, KobakoError, NotFound, PermissionDenied, Unavailable
from kobako.oci import image_spec as spec
from kobako.oci.reference import parse_normalized
from kobako.registry.client import fetcher, hosts, resolver
from kobako.registry.client.progress import Progress
from kobako.registry.client.pusher import add_source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.content.local import LocalStore
    from kobako.images.service import ImageService
    from kobako.oci.reference import Reference
    from kobako.registry.client.hosts import Endpoint
    from kobako.registry.client.remote import Remote
    from kobako.registry.client.transport import Transport

#: ``name`` (as recorded), ``digest`` (of what the reference named), ``image_id``, ``downloaded`` (blobs fetched)
Pulled = namedtuple("Pulled", "name digest image_id downloaded")


def open_remote(
    endpoint: Endpoint, domain: str, transport_factory: Callable[[Endpoint], Transport] | None
) -> Remote:
    from kobako.registry.client.remote import Remote

    transport = transport_factory(endpoint) if transport_factory else None
    return Remote(endpoint, transport, domain=domain)


def pull(service: ImageService, ref: str, *, platform: str | None = None, tls_verify: bool | None = None,
         progress: Progress | None = None, config: dict | None = None,
         transport_factory: Callable[[Endpoint], Transport] | None = None) -> Pulled:  # fmt: skip
    progress = progress or Progress()
    r = parse_normalized(ref)
    want = resolver.parse_platform(platform) if platform else None
    config = hosts.load_config() if config is None else config
    reference = r.digest or r.tag
    failures: list[str] = []
    for endpoint in hosts.endpoints(r.domain, config, tls_verify):
        remote = open_remote(endpoint, r.domain, transport_factory)
        try:
            try:
                if not failures:
                    progress.message(f"{r.tag or r.digest}: Pulling from {r.familiar_name()}")
                index, manifest = resolver.resolve(remote, r.path, reference, want)
            except (NotFound, Unavailable, PermissionDenied) as exc:
                if not endpoint.mirror:
                    if failures:
                        exc.add_note("mirrors tried first: " + "; ".join(failures))
                    raise
                failures.append(f"{endpoint.host}: {exc}")
                continue
            return _fetch_and_record(service, remote, r, index, manifest, progress)
        finally:
            remote.close()
    raise NotFound(f"{ref}: not found")  # pragma: no cover - the registry itself is always the last endpoint


def _fetch_and_record(service: ImageService, remote: Remote, r: Reference, index: resolver.Fetched | None,
                      manifest: resolver.Fetched, progress: Progress) -> Pulled:  # fmt: skip
    from kobako.images.archive import put_bytes
    from kobako.images.unpack import unpack
    from kobako.metadata.lock import GCLock

    doc = manifest.doc
    layers = doc["layers"]
    content = service.content
    repo, domain = r.path, r.domain
    with GCLock(service.root):
        fetcher.fetch_blob(remote, repo, doc["config"], content, Progress())
        config_digest = doc["config"]["digest"]
        config = spec.parse(content.read_bytes(config_digest, limit=spec.MAX_DOCUMENT_SIZE), "config",
                            f"config {config_digest}")  # fmt: skip
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layers):
            raise InvalidArgument(f"{r}: {len(layers)} layers but the config lists {len(diff_ids)} diff IDs")
        before = {layer["digest"] for layer in layers if _present(content, layer["digest"])}
        fetcher.fetch_all(remote, repo, layers, content, progress)
        for layer in layers:
            if layer["digest"] not in before:
                progress.status(layer["digest"], "Pull complete")
        put_bytes(content, manifest.body, f"pull-manifest-{manifest.digest}")
        target = manifest.descriptor()
        if index is not None:
            put_bytes(content, index.body, f"pull-index-{index.digest}")
            host_pick = spec.select_manifest(index.doc)
            if host_pick is not None and host_pick["digest"] == manifest.digest:
                target = index.descriptor()
        for d in [config_digest, *(layer["digest"] for layer in layers)]:
            try:
                add_source(content, d, domain, repo)
            except KobakoError:
                pass  # a label is a hint for later mounts, never worth failing a pull
        try:
            unpack(service.snapshotter(), service.content_root, layers, diff_ids)
        except NotFound as exc:
            raise InvalidArgument(f"unpacking {r}: {exc}") from exc
        digest = (index or manifest).digest
        name = f"{r.name}@{r.digest}" if r.digest else f"{r.name}:{r.tag}"
        service.store.set(name, target, config_digest)
    progress.message(f"Digest: {digest}")
    fetched = len([x for x in layers if x["digest"] not in before])
    what = "Downloaded newer image" if fetched else "Image is up to date"
    progress.message(f"Status: {what} for {r.familiar()}")
    return Pulled(name, digest, config_digest, fetched)


def _present(content: LocalStore, digest: str) -> bool:
    try:
        content.info(digest)
    except NotFound:
        return False
    return True
