"""Content discovery: ``/v2/<name>/tags/list`` and ``/v2/_catalog`` (lexical order, ``n``/``last``
pagination with a ``Link: <...>; rel="next"`` header) and the referrers API
``/v2/<name>/referrers/<digest>`` (an OCI index, optionally filtered by ``artifactType``)."""

from __future__ import annotations

from urllib.parse import quote

from kobako.oci import image_spec as spec
from kobako.registry.server.asgi import Request, Response, json_response
from kobako.registry.server.errors import RegistryError
from kobako.registry.server.names import parse_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.registry.server.storage import Storage

MAX_PAGE = 10_000


def _page(req: Request, items: list[str], path: str) -> tuple[list[str], list[tuple[bytes, bytes]]]:
    """One page of a sorted list, and the Link header to the next one when there is more."""
    n_text, last = req.query.get("n"), req.query.get("last")
    if n_text is not None and (not n_text.isdigit() or int(n_text) > MAX_PAGE):
        raise RegistryError("PAGINATION_NUMBER_INVALID", f"n must be an integer from 0 to {MAX_PAGE}")
    if last:
        items = [i for i in items if i > last]
    if n_text is None:
        return items, []
    n = int(n_text)
    page = items[:n]
    if n == 0 or len(items) <= n:
        return page, []
    link = f'<{path}?n={n}&last={quote(page[-1], safe="")}>; rel="next"'
    return page, [(b"link", link.encode())]


def tags_list(storage: Storage, req: Request, name: str) -> Response:
    if not storage.repo_exists(name):
        raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry", detail={"name": name})
    tags, headers = _page(req, storage.tags(name), f"/v2/{name}/tags/list")
    return json_response(200, {"name": name, "tags": tags}, headers)


def catalog(storage: Storage, req: Request) -> Response:
    repos, headers = _page(req, storage.repositories(), "/v2/_catalog")
    return json_response(200, {"repositories": repos}, headers)


def referrers(storage: Storage, req: Request, name: str, ref: str) -> Response:
    subject = parse_digest(ref)
    found = storage.referrers(name, subject) if storage.repo_exists(name) else []
    headers = []
    want = req.query.get("artifactType")
    if want:
        found = [d for d in found if d.get("artifactType") == want]
        headers.append((b"oci-filters-applied", b"artifactType"))
    index = {"schemaVersion": 2, "mediaType": spec.OCI_INDEX, "manifests": found}
    return json_response(200, index, headers, content_type=spec.OCI_INDEX)
