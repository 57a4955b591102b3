"""The registry server: an ASGI application implementing the OCI distribution spec v1.1.

| module | purpose |
|---|---|
| ``app.py`` | the ASGI callable: routing, auth, errors; ``serve()`` runs it under uvicorn |
| ``asgi.py`` | request/response plumbing on raw ASGI (bounded bodies, streamed files) |
| ``errors.py`` | the spec's error codes and their HTTP statuses |
| ``names.py`` | repository name, tag and digest grammar |
| ``storage.py`` | filesystem layout: repositories, links, tags, referrers, upload sessions |
| ``blobs.py``, ``uploads.py``, ``manifests.py``, ``listing.py`` | the endpoints |
| ``auth.py`` | htpasswd (bcrypt) basic auth, anonymous read |
| ``gc.py`` | mark and sweep of unreferenced blobs |
"""
