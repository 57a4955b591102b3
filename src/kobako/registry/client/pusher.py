"""Blobs and manifests into a registry.

A blob is skipped when ``HEAD`` finds it; mounted from another repository of the same registry when the
content store remembers one it came from or went to (label ``kobako.io/distribution.source.<host>``); else
uploaded: ``POST`` for a session, then one ``PUT ?digest=`` with the whole body (monolithic), or ``PATCH``
chunks with ``Content-Range`` and a closing ``PUT`` when a chunk size is given. Bodies stream from the
content store in fixed buffers. Manifests go last, as their exact stored bytes, so digests never change.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument, NotFound
from kobako.oci.digest import BUFSIZE, Digest
from kobako.registry.client.auth import pull_scope, push_scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from kobako.content.local import LocalStore
    from kobako.registry.client.progress import Progress
    from kobako.registry.client.remote import Remote

SOURCE_LABEL = "kobako.io/distribution.source."


def source_repos(content: LocalStore, digest: str, domain: str) -> list[str]:
    """Repositories of ``domain`` the blob is known to be in."""
    try:
        value = content.info(digest).labels.get(SOURCE_LABEL + domain, "")
    except NotFound:
        return []
    return [r for r in value.split(",") if r]


def add_source(content: LocalStore, digest: str, domain: str, repo: str) -> None:
    repos = source_repos(content, digest, domain)
    if repo not in repos:
        repos = [repo, *repos][:8]  # a few are plenty for mounting; labels stay small
        content.update(digest, {SOURCE_LABEL + domain: ",".join(repos)})


def blob_exists(remote: Remote, repo: str, digest: str) -> bool:
    response = remote.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[push_scope(repo)], ok=(200, 404),
                              what=f"blob {digest}")  # fmt: skip
    response.close()
    return response.status_code == 200


def _stream(
    content: LocalStore, digest: str, offset: int, length: int, progress: Progress
) -> Iterator[bytes]:
    with content.reader(digest) as f:
        f.seek(offset)
        left = length
        while left:
            chunk = f.read(min(BUFSIZE, left))
            if not chunk:
                raise InvalidArgument(f"blob {digest} is shorter than its descriptor says")
            left -= len(chunk)
            progress.advance(digest, len(chunk))
            yield chunk


def _check_digest(response: object, d: str) -> None:
    claimed = response.headers.get("docker-content-digest")  # type: ignore[attr-defined]
    if claimed and claimed.strip() != d:
        raise InvalidArgument(f"the registry stored {claimed} for blob {d}")


def _location(remote: Remote, response: object) -> str:
    import httpx

    location = response.headers.get("location")  # type: ignore[attr-defined]
    response.close()  # type: ignore[attr-defined]
    if not location:
        raise InvalidArgument(f"{remote.endpoint.host}: upload session without a Location header")
    return str(httpx.URL(remote.base + "/").join(location))


def push_blob(remote: Remote, repo: str, desc: dict, content: LocalStore, progress: Progress, domain: str,
              chunk_size: int | None = None) -> str:  # fmt: skip
    """Make sure the registry has the blob in ``repo``; return what happened ("exists", "mounted", "pushed")."""
    import httpx

    d, size = str(Digest.parse(desc["digest"])), int(desc["size"])
    if blob_exists(remote, repo, d):
        progress.status(d, "Layer already exists")
        return "exists"
    location = ""
    for source in source_repos(content, d, domain):
        if source == repo:
            continue
        response = remote.request(
            "POST", f"/v2/{repo}/blobs/uploads/?mount={d}&from={source}",
            scopes=[push_scope(repo), pull_scope(source)], ok=(201, 202), what=f"mount {d}",
        )  # fmt: skip
        if response.status_code == 201:
            response.close()
            progress.status(d, f"Mounted from {source}")
            return "mounted"
        location = _location(remote, response)  # the registry opened a session instead: use it
        break
    if not location:
        response = remote.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=[push_scope(repo)],
                                  headers={"content-length": "0"}, ok=(202,), what=f"upload {d}")  # fmt: skip
        location = _location(remote, response)
    progress.start(d, size, "Pushing")
    offset = 0
    if chunk_size and size > chunk_size:
        while offset < size:
            n = min(chunk_size, size - offset)
            start = offset
            response = remote.request(
                "PATCH", location, scopes=[push_scope(repo)], ok=(202,), what=f"upload {d}",
                headers={"content-type": "application/octet-stream", "content-length": str(n),
                         "content-range": f"{start}-{start + n - 1}"},
                body=lambda start=start, n=n: _stream(content, d, start, n, progress),
            )  # fmt: skip
            location = _location(remote, response)
            offset += n
    url = str(httpx.URL(location).copy_add_param("digest", d))
    left = size - offset
    response = remote.request(
        "PUT", url, scopes=[push_scope(repo)], ok=(201,), what=f"upload {d}",
        headers={"content-type": "application/octet-stream", "content-length": str(left)},
        body=lambda: _stream(content, d, offset, left, progress) if left else b"",
    )  # fmt: skip
    _check_digest(response, d)
    response.close()
    progress.status(d, "Pushed")
    return "pushed"


def put_manifest(remote: Remote, repo: str, reference: str, body: bytes, media_type: str) -> str:
    """PUT a manifest under a tag or digest; return its digest (checked against what the registry says)."""
    d = str(Digest.from_bytes(body))
    response = remote.request("PUT", f"/v2/{repo}/manifests/{reference}", scopes=[push_scope(repo)],
                              headers={"content-type": media_type}, body=body, ok=(201, 200, 202),
                              what=f"manifest {repo}:{reference}")  # fmt: skip
    _check_digest(response, d)
    response.close()
    return d
