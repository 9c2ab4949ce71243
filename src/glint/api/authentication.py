"""DRF sees the person the certificate middleware already identified; there is no other way in."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication


class CertificateAuthentication(BaseAuthentication):
    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated:
            return (user, None)
        return None

    def authenticate_header(self, request):
        return "Certificate"  # makes DRF answer 401 rather than 403 when no identity is present


class CertificateAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes certificate sign-in in the OpenAPI schema (mutual TLS, OpenAPI 3.1's term)."""

    target_class = "glint.api.authentication.CertificateAuthentication"
    name = "clientCertificate"

    def get_security_definition(self, auto_schema):
        return {
            "type": "mutualTLS",
            "description": "A grid (X.509) client certificate whose DN an admin has added.",
        }
