"""``glint serve``: the embedded production server (cheroot + our own TLS context).

- ``tls``: the ``ssl.SSLContext`` and the verified client chain.
- ``wsgi_server``: cheroot subclasses that build the environ contract identity relies on.
- ``serve``: modes (direct TLS, behind a proxy, insecure development), start-up and shutdown.
- ``background``: the in-process workers started beside the server.
"""
