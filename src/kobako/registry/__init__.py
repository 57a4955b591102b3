"""Distribution: a registry client (pull, push, login) and an OCI distribution-spec v1.1 registry server.

``client/`` talks to any registry over a one-method transport seam (``handle(request) -> response``), so unit
tests plug a handler and integration tests hit real servers. ``server/`` is a raw ASGI application over a
filesystem store built on :class:`kobako.content.local.LocalStore`.
"""
