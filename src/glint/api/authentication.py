"""DRF authentication: the certificate the middleware verified, or a configured issuer's bearer
token.

Certificates are ambient credentials, like cookies: a browser presents them to any page that posts
to Glint. So a state-changing API call that comes from a browser (it carries an ``Origin``,
``Sec-Fetch-Site`` or a cookie) must pass Django's CSRF check, exactly as a form would. The command
line and scripts send none of these and need no token. Bearer tokens are never sent by a browser on
its own, so they need no CSRF check.
"""

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from glint.accounts.tokens import TokenError, user_for_token

BROWSER_SIGNS = ("HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE", "HTTP_COOKIE")


def _enforce_csrf_for_browsers(request) -> None:
    django_request = request._request
    if not any(django_request.META.get(key) for key in BROWSER_SIGNS):
        return
    check = CsrfViewMiddleware(lambda _request: None)
    check.process_request(django_request)
    reason = check.process_view(django_request, None, (), {})
    if reason is not None:
        raise PermissionDenied("CSRF check failed: a browser's request needs Glint's CSRF token.")


class CertificateAuthentication(BaseAuthentication):
    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated:
            _enforce_csrf_for_browsers(request)
            return (user, None)
        return None

    def authenticate_header(self, request):
        return "Certificate"  # makes DRF answer 401 rather than 403 when no identity is present


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <JWT>`` from a configured issuer (``glint.accounts.tokens``)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer ") or not settings.GLINT_TOKEN_ISSUERS:
            return None
        try:
            user = user_for_token(header[len("Bearer ") :].strip(), settings.GLINT_TOKEN_ISSUERS)
        except TokenError as exc:
            raise AuthenticationFailed(str(exc)) from None
        return (user, "bearer")

    def authenticate_header(self, request):
        return 'Bearer realm="glint"'


class CertificateAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes certificate sign-in in the OpenAPI schema (mutual TLS, OpenAPI 3.1's term)."""

    target_class = "glint.api.authentication.CertificateAuthentication"
    name = "clientCertificate"

    def get_security_definition(self, auto_schema):
        return {
            "type": "mutualTLS",
            "description": "A grid (X.509) client certificate whose DN an admin has added.",
        }


class BearerTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "glint.api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A WLCG/OIDC token from an issuer this Glint trusts, "
                "whose (iss, sub) is linked to a user."
            ),
        }
