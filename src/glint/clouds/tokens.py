"""Keystone tokens shared by the drivers of one process.

A driver lives for one poll, one copy or one page, and each used to authenticate anew: a token
request to Keystone, and one more token for Glance to validate (v2 did the same). Drivers built
from the same credentials now start from the token, and the service catalog that came with it,
that the last one left here; keystoneauth still renews a token that is close to expiry.

A reused token can be stale in two ways, and both are mended without the caller noticing:
Keystone revoked it (Glance answers 401; keystoneauth authenticates again and repeats the
request), or the catalog in it names an endpoint that has moved (the connection is refused; the
driver forgets the token, authenticates again and repeats the request once). Checking a repo
(:meth:`OpenStackDriver.check`) always authenticates anew: its point is to test the credentials.

Entries are keyed by keystoneauth's ``get_cache_id()``, a hash of every auth option including the
secret, so changed credentials never meet an old token. Tokens stay in this process's memory
only: never written, logged or sent anywhere else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["TokenCache", "TOKENS"]


class TokenCache:
    """Auth states (token and catalog) by credentials; the least recently used go first."""

    def __init__(self, size: int = 256):
        self._size = size
        self._states: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def restore(self, plugin: Any) -> bool:
        """Give ``plugin`` the state its credentials left here; whether there was one."""
        key = plugin.get_cache_id()
        with self._lock:
            state = self._states.get(key) if key else None
            if state is not None:
                self._states.move_to_end(key)
        if state is None:
            return False
        plugin.set_auth_state(state)
        return True

    def remember(self, plugin: Any) -> None:
        """Keep ``plugin``'s current token for the next driver with the same credentials."""
        key, state = plugin.get_cache_id(), plugin.get_auth_state()
        if not key or not state:
            return
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self._size:
                self._states.popitem(last=False)

    def forget(self, plugin: Any) -> None:
        key = plugin.get_cache_id()
        with self._lock:
            self._states.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


#: The process's cache, used by every :class:`~glint.clouds.openstack.OpenStackDriver`.
TOKENS = TokenCache()
