"""Per-person API rate limit: ``GLINT_API_RATE_LIMIT`` calls (default 300/minute, a fraction of
what one server worker answers: README "Configuration"), then 429 + Retry-After.

Keyed by the person (certificate or token alike), not the address: many users share a NAT, and one
person's script should not slow everyone else down. Counts live in Django's default cache, which
the settings make shared (Redis with a broker, files in the data directory without), so N server
workers or web replicas enforce one limit, not N of them.
"""

import logging

from django.conf import settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)


class PerPersonRateThrottle(UserRateThrottle):
    scope = "person"

    def get_rate(self):
        rate = settings.GLINT_API_RATE_LIMIT  # checked by glint.config.api_rate_limit
        return None if rate == "off" else rate

    def allow_request(self, request, view):
        """Fail open when the shared counts cannot be read (Redis restarting): a missed count is
        better than refusing every request of every person."""
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any backend error means "cannot count now"
            log.warning(
                "API rate limit not counted: the shared cache failed (%s)", type(exc).__name__
            )
            return True
