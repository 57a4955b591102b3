"""The registry client.

| module | purpose |
|---|---|
| ``transport.py`` | the one-method seam ``handle(request) -> response`` and its httpx implementation |
| ``hosts.py`` | registries config (mirrors, insecure hosts, CA files), endpoints, scheme fallback |
| ``auth.py`` | credentials (auth.json), WWW-Authenticate challenges, basic and bearer token flow |
| ``remote.py`` | one registry host: requests with auth retry, errors translated |
| ``resolver.py`` | reference → manifest descriptor (indexes and platform selection) |
| ``fetcher.py`` | blobs streamed into the content store, verified, resumed with Range |
| ``pusher.py`` | blob uploads (existence check, mount, monolithic or chunked) and manifests |
| ``pull.py``, ``push.py`` | the whole pull and push of an image |
| ``progress.py`` | per-layer progress: rich bars on a terminal, plain lines otherwise, quiet |
"""
