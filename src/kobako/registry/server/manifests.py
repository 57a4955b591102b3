"""``/v2/<name>/manifests/<reference>``: GET/HEAD (content negotiation on Accept), PUT (validated, every blob
and child manifest it names must be in the repository, at most 4 MiB), DELETE (a tag, or a manifest by digest).

A manifest with a ``subject`` is also recorded as a referrer of that digest (answered with ``OCI-Subject``),
whether or not the subject has been pushed yet, as the spec allows.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument, NotFound
from kobako.oci import image_spec as spec
from kobako.oci.digest import Digest
from kobako.oci.jsoncodec import loads
from kobako.registry.server.asgi import FileResponse, Request, Response
from kobako.registry.server.errors import RegistryError
from kobako.registry.server.names import check_tag, parse_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.registry.server.storage import Storage

#: Largest manifest accepted (the spec asks registries to take at least 4 MiB; larger is refused with 413).
MAX_MANIFEST = 4 << 20
ACCEPTED_TYPES = spec.MANIFEST_TYPES | spec.INDEX_TYPES
_NONDISTRIBUTABLE = (spec.DOCKER_LAYER_FOREIGN, spec.OCI_LAYER_ND, spec.OCI_LAYER_ND + "+gzip",
                     spec.OCI_LAYER_ND + "+zstd")  # fmt: skip


def _is_digest(ref: str) -> bool:
    return ":" in ref  # tags cannot contain ':'


def _resolve(storage: Storage, name: str, ref: str) -> Digest:
    if not storage.repo_exists(name):
        raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry", detail={"name": name})
    try:
        if _is_digest(ref):
            return parse_digest(ref)
        check_tag(ref)
        return storage.tag_target(name, ref)
    except (NotFound, InvalidArgument):
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"manifest {ref} unknown", detail={"reference": ref}
        ) from None


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept:
        return True
    for item in accept.split(","):
        kind = item.partition(";")[0].strip().lower()
        if kind in ("*/*", "application/*", media_type):
            return True
    return False


def get_manifest(storage: Storage, req: Request, name: str, ref: str) -> FileResponse:
    d = _resolve(storage, name, ref)
    try:
        info = storage.manifest_info(name, d)
    except (NotFound, InvalidArgument):
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"manifest {ref} unknown", detail={"reference": ref}
        ) from None
    media_type = str(info.get("mediaType") or spec.OCI_MANIFEST)
    if not _accepts(req.header("accept"), media_type):
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"manifest {ref} is a {media_type}, which the Accept header does not allow"
        )
    f = storage.content.reader(d)
    size = int(info.get("size") or 0)
    headers = [
        (b"content-type", media_type.encode()),
        (b"docker-content-digest", str(d).encode()),
        (b"etag", f'"{d}"'.encode()),
    ]
    return FileResponse(200, headers, f, storage.content.blob_path(d), 0, size)


def _parse(body: bytes, content_type: str) -> tuple[dict, str]:
    """The validated document and its media type."""
    try:
        doc = loads(body, "manifest")
    except InvalidArgument as exc:
        raise RegistryError("MANIFEST_INVALID", str(exc)) from None
    if not isinstance(doc, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest: want a JSON object")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise RegistryError("MANIFEST_INVALID", "manifest: mediaType: want a string")
    if declared and content_type in ACCEPTED_TYPES and declared != content_type:
        raise RegistryError(
            "MANIFEST_INVALID",
            f"Content-Type {content_type} does not match the manifest's mediaType {declared}",
        )
    media_type = declared or (content_type if content_type in ACCEPTED_TYPES else "")
    if not media_type:
        media_type = spec.OCI_INDEX if "manifests" in doc else spec.OCI_MANIFEST
    if media_type not in ACCEPTED_TYPES:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
    try:
        if media_type in spec.INDEX_TYPES:
            spec.validate_index(doc)
        else:
            spec.validate_manifest(doc, image=False)
    except InvalidArgument as exc:
        raise RegistryError("MANIFEST_INVALID", str(exc)) from None
    return doc, media_type


def _check_references(storage: Storage, name: str, doc: dict, media_type: str) -> None:
    """Every blob and child manifest named must already be in the repository."""
    missing = []
    if media_type in spec.INDEX_TYPES:
        for child in doc["manifests"]:
            if not storage.has_manifest(name, Digest.parse(child["digest"])):
                missing.append(child["digest"])
    else:
        for desc in [doc["config"], *doc["layers"]]:
            if desc["mediaType"] in _NONDISTRIBUTABLE and desc.get("urls"):
                continue  # fetched from its URLs, never pushed (foreign layers)
            d = Digest.parse(desc["digest"])
            if not storage.repo_has_blob(name, d):
                missing.append(desc["digest"])
                continue
            if storage.content.info(d).size != desc["size"]:
                raise RegistryError("MANIFEST_INVALID", f"blob {d} is not {desc['size']} bytes long")
    if missing:
        raise RegistryError(
            "MANIFEST_BLOB_UNKNOWN",
            f"manifest references unknown blob {missing[0]}",
            detail={"digest": missing[0]},
        )


def referrer_descriptor(doc: dict, media_type: str, d: Digest, size: int) -> dict:
    desc: dict[str, object] = {"mediaType": media_type, "digest": str(d), "size": size}
    artifact_type = doc.get("artifactType")
    if not artifact_type and media_type in spec.MANIFEST_TYPES:
        artifact_type = doc["config"]["mediaType"]  # the spec's fallback for image manifests
    if isinstance(artifact_type, str) and artifact_type:
        desc["artifactType"] = artifact_type
    if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
        desc["annotations"] = doc["annotations"]
    return desc


async def put_manifest(storage: Storage, req: Request, name: str, ref: str) -> Response:
    expected = parse_digest(ref) if _is_digest(ref) else None
    if expected is None:
        check_tag(ref)
    elif expected.algorithm != "sha256":
        raise RegistryError("DIGEST_INVALID", "manifests are stored by sha256 digest only")
    body = await req.read(MAX_MANIFEST)
    content_type = (req.header("content-type") or "").partition(";")[0].strip().lower()
    doc, media_type = _parse(body, content_type)
    d = Digest.from_bytes(body)
    if expected is not None and d != expected:
        raise RegistryError(
            "DIGEST_INVALID", f"manifest hashes to {d}, not {expected}", detail={"digest": ref}
        )
    _check_references(storage, name, doc, media_type)
    storage.put_manifest(name, body, media_type)
    if expected is None:
        storage.set_tag(name, ref, d)
    headers = [
        (b"location", f"/v2/{name}/manifests/{d}".encode()),
        (b"docker-content-digest", str(d).encode()),
    ]
    subject = doc.get("subject")
    if isinstance(subject, dict):
        subject_digest = Digest.parse(subject["digest"])
        storage.add_referrer(name, subject_digest, referrer_descriptor(doc, media_type, d, len(body)))
        headers.append((b"oci-subject", str(subject_digest).encode()))
    return Response(201, headers)


def delete_manifest(storage: Storage, name: str, ref: str) -> Response:
    if not storage.repo_exists(name):
        raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry", detail={"name": name})
    try:
        if _is_digest(ref):
            storage.delete_manifest(name, parse_digest(ref))
        else:
            storage.delete_tag(name, check_tag(ref))
    except NotFound:
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"manifest {ref} unknown", detail={"reference": ref}
        ) from None
    return Response(202)
