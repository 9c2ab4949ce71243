"""DRF sees the person the certificate middleware already identified; there is no other way in."""

from rest_framework.authentication import BaseAuthentication


class CertificateAuthentication(BaseAuthentication):
    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated:
            return (user, None)
        return None

    def authenticate_header(self, request):
        return "Certificate"  # makes DRF answer 401 rather than 403 when no identity is present
