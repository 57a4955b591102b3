"""Resolve a reference to manifests: fetch by tag or digest with every manifest type accepted, verify the
bytes against the digest asked for (or the one the registry claims), and pick a platform from an index."""

from __future__ import annotations

from kobako.errors import InvalidArgument, NotFound
from kobako.oci import image_spec as spec
from kobako.oci.digest import Digest
from kobako.registry.client.auth import pull_scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.registry.client.remote import Remote

MANIFEST_ACCEPT = ", ".join(
    (spec.OCI_INDEX, spec.DOCKER_MANIFEST_LIST, spec.OCI_MANIFEST, spec.DOCKER_MANIFEST)
)


class Fetched:
    """A manifest or index as fetched: ``body`` (exact bytes), ``media_type``, ``digest`` (str), ``doc``."""

    __slots__ = ("body", "digest", "doc", "media_type")

    def __init__(self, body: bytes, media_type: str, digest: str, doc: dict) -> None:
        self.body = body
        self.media_type = media_type
        self.digest = digest
        self.doc = doc

    def descriptor(self) -> dict:
        return spec.descriptor(self.media_type, self.digest, len(self.body))


def parse_platform(text: str) -> dict:
    """``linux/arm64/v8`` → {"os": "linux", "architecture": "arm64", "variant": "v8"}."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: want OS/ARCH[/VARIANT]")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def _read_bounded(response: object, limit: int, what: str) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_bytes():  # type: ignore[attr-defined]
            data += chunk
            if len(data) > limit:
                raise InvalidArgument(f"{what}: larger than {limit} bytes")
    finally:
        response.close()  # type: ignore[attr-defined]
    return bytes(data)


def fetch_manifest(remote: Remote, repo: str, reference: str) -> Fetched:
    """GET a manifest or index by tag or digest; the bytes are checked against the digest."""
    what = f"{remote.endpoint.host}/{repo}:{reference}" if ":" not in reference else f"{repo}@{reference}"
    response = remote.request(
        "GET", f"/v2/{repo}/manifests/{reference}", scopes=[pull_scope(repo)],
        headers={"accept": MANIFEST_ACCEPT}, what=f"manifest {what}",
    )  # fmt: skip
    claimed = response.headers.get("docker-content-digest")
    content_type = response.headers.get("content-type", "").partition(";")[0].strip()
    body = _read_bounded(response, spec.MAX_DOCUMENT_SIZE, f"manifest {what}")
    if ":" in reference:
        expected = Digest.parse(reference)
        got = Digest.from_bytes(body, expected.algorithm)
        if got != expected:
            raise InvalidArgument(f"manifest {what}: the registry sent content hashing to {got}")
    else:
        got = Digest.from_bytes(body)
        if claimed:
            try:
                claimed_digest = Digest.parse(claimed.strip())
            except InvalidArgument:
                claimed_digest = None
            if (
                claimed_digest is not None
                and Digest.from_bytes(body, claimed_digest.algorithm) != claimed_digest
            ):
                raise InvalidArgument(
                    f"manifest {what}: content does not match Docker-Content-Digest {claimed}"
                )
    from kobako.oci import jsoncodec

    doc = jsoncodec.loads(body, f"manifest {what}")
    if not isinstance(doc, dict):
        raise InvalidArgument(f"manifest {what}: want a JSON object")
    media_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else ""
    media_type = media_type or content_type
    if media_type not in spec.MANIFEST_TYPES | spec.INDEX_TYPES:
        media_type = spec.OCI_INDEX if "manifests" in doc else spec.OCI_MANIFEST
    if media_type in spec.INDEX_TYPES:
        spec.validate_index(doc, f"index {what}")
    else:
        spec.validate_manifest(doc, f"manifest {what}")
    return Fetched(body, media_type, str(got), doc)


def resolve(
    remote: Remote, repo: str, reference: str, platform: dict | None = None
) -> tuple[Fetched | None, Fetched]:
    """(the index if the reference names one, the image manifest for ``platform`` or this host)."""
    top = fetch_manifest(remote, repo, reference)
    if top.media_type not in spec.INDEX_TYPES:
        return None, top
    want = platform or spec.host_platform()
    found = spec.select_manifest(top.doc, want)
    if found is None:
        shown = "/".join(want[k] for k in ("os", "architecture", "variant") if want.get(k))
        raise NotFound(f"{repo}:{reference}: no image for platform {shown} in the index")
    child = fetch_manifest(remote, repo, found["digest"])
    if child.media_type in spec.INDEX_TYPES:
        raise InvalidArgument(f"{repo}@{found['digest']}: nested indexes are not supported")
    if len(child.body) != found["size"]:
        raise InvalidArgument(
            f"{repo}@{found['digest']}: {len(child.body)} bytes, the index says {found['size']}"
        )
    return top, child
