"""Per-person API rate limit: ``GLINT_API_RATE_LIMIT`` calls (default 300/minute, a fraction of
what one server worker answers: README "Configuration"), then 429 + Retry-After.

Keyed by the person (certificate or token alike), not the address: many users share a NAT, and one
person's script should not slow everyone else down. Counts live in Django's cache, so each server
process counts on its own; with several processes the effective limit is that many times higher.
"""

from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class PerPersonRateThrottle(UserRateThrottle):
    scope = "person"

    def get_rate(self):
        rate = settings.GLINT_API_RATE_LIMIT  # checked by glint.config.api_rate_limit
        return None if rate == "off" else rate
