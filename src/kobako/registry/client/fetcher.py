"""Blobs from a registry into the content store: streamed through a content-store writer that hashes as it
writes, and published only once size and digest check out (nothing is visible before).

The ingest is named ``pull-<digest>``, so a transfer cut short — in this process (the connection dropped) or
an earlier one (killed) — resumes where its data ends with an HTTP ``Range`` request. A registry that ignores
the range (answers 200) is read from the start again. Blobs the store already has are skipped.
"""

from __future__ import annotations

import time

from kobako.errors import AlreadyExists, InvalidArgument, KobakoError, Unavailable
from kobako.oci.digest import Digest
from kobako.registry.client.auth import pull_scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.content.local import LocalStore
    from kobako.registry.client.progress import Progress
    from kobako.registry.client.remote import Remote

INGEST_PREFIX = "pull-"
#: Attempts per blob after a dropped connection (each resumes where the last stopped).
RETRIES = 5
BACKOFF = 0.2
#: How long to wait for another process fetching the same blob.
WAIT_FOR_OTHER = 600.0


def _content_range_start(value: str | None) -> int | None:
    """The first byte of ``bytes a-b/n``."""
    if not value:
        return None
    unit, _, rest = value.strip().partition(" ")
    first = rest.partition("-")[0]
    return int(first) if unit.lower() == "bytes" and first.isdigit() else None


def fetch_blob(remote: Remote, repo: str, desc: dict, content: LocalStore, progress: Progress,
               retries: int = RETRIES) -> bool:  # fmt: skip
    """Make sure the blob ``desc`` names is in ``content``; False if it already was."""
    import httpx

    d, size = Digest.parse(desc["digest"]), int(desc["size"])
    key = str(d)
    deadline = time.monotonic() + WAIT_FOR_OTHER
    while True:
        try:
            w = content.writer(INGEST_PREFIX + key, d, size)
            break
        except AlreadyExists:
            progress.status(key, "Already exists")
            return False
        except Unavailable:  # another pull is fetching the same blob: wait for it to publish or give up
            if time.monotonic() > deadline:
                raise
            progress.status(key, "Waiting")
            time.sleep(0.2)
    with w:
        progress.start(key, size, "Downloading")
        if w.offset:
            progress.reset(key, w.offset)
        failures = 0
        while w.offset < size or size == 0:
            offset = w.offset
            headers = {"range": f"bytes={offset}-"} if offset else {}
            try:
                response = remote.request("GET", f"/v2/{repo}/blobs/{d}", scopes=[pull_scope(repo)],
                                          headers=headers, ok=(200, 206), what=f"blob {d}")  # fmt: skip
                try:
                    if offset and response.status_code == 200:
                        w.truncate(0)  # the registry ignored the range and sends the whole blob: take it
                        progress.reset(key, 0)
                    elif offset and _content_range_start(response.headers.get("content-range")) != offset:
                        w.truncate(0)  # some other part: ask again for all of it
                        progress.reset(key, 0)
                        failures += 1
                        continue
                    for chunk in response.iter_raw():
                        w.write(chunk)
                        progress.advance(key, len(chunk))
                finally:
                    response.close()
            except (httpx.TransportError, Unavailable) as exc:
                failures += 1
                if failures > retries:
                    raise Unavailable(f"blob {d}: transfer failed {failures} times, last: {exc}") from exc
                progress.status(key, f"Retrying ({failures})")
                time.sleep(BACKOFF * failures)
                continue
            if size == 0 or w.offset >= size:
                break
            failures += 1  # a clean end before all bytes: the next round asks for the rest
            if failures > retries:
                raise Unavailable(f"blob {d}: the registry sent {w.offset} of {size} bytes")
        progress.status(key, "Verifying Checksum")
        try:
            w.commit(size, d)
        except AlreadyExists:
            pass
        except InvalidArgument as exc:
            raise InvalidArgument(f"blob {d} from {remote.endpoint.host}/{repo} is corrupt: {exc}") from exc
    progress.status(key, "Download complete")
    return True


def fetch_all(remote: Remote, repo: str, descs: list[dict], content: LocalStore, progress: Progress,
              workers: int = 3) -> None:  # fmt: skip
    """Fetch blobs in parallel (``workers`` threads, as Docker's three concurrent downloads)."""
    if len(descs) <= 1 or workers <= 1:
        for desc in descs:
            fetch_blob(remote, repo, desc, content, progress)
        return
    from concurrent.futures import ThreadPoolExecutor

    unique = list({desc["digest"]: desc for desc in descs}.values())
    errors: list[KobakoError] = []
    with ThreadPoolExecutor(max_workers=min(workers, len(unique)), thread_name_prefix="pull") as pool:
        futures = [pool.submit(fetch_blob, remote, repo, desc, content, progress) for desc in unique]
        for future in futures:
            exc = future.exception()
            if isinstance(exc, KobakoError):
                errors.append(exc)
            elif exc is not None:
                raise exc
    if errors:
        raise errors[0]
