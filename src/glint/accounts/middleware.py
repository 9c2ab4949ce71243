"""Attach the person behind the client certificate to every request, and turn away everyone else.

Every path needs a registered, active user except the probes (``/healthz``, ``/readyz``,
``/metrics``) and static files. An unknown but valid certificate gets a page with its DN saying an
admin must add it, and leaves an access request behind; nothing else is created.

API calls may instead carry a WLCG/OIDC bearer token (``glint.accounts.tokens``) when token issuers
are configured: those pass through here without a user, and DRF's token authentication decides.
"""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from django.template.response import TemplateResponse

from glint.accounts.identity import identity_from_environ
from glint.accounts.models import User
from glint.accounts.services import note_access_request

OPEN_PATHS = ("/healthz", "/readyz", "/metrics")


def _refuse(request, reason: str, identity=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=403)
    response = TemplateResponse(
        request, "accounts/refused.html", {"reason": reason, "identity": identity}, status=403
    )
    return response.render()


def _bearer_token_for_api(request) -> bool:
    """An API call with a bearer token, when token issuers are configured: DRF checks the token."""
    return (
        bool(settings.GLINT_TOKEN_ISSUERS)
        and request.path.startswith("/api/")
        and request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")
    )


class CertificateIdentityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.identity = identity_from_environ(request.META, settings.GLINT_TRUSTED_PROXIES)
        request.user = AnonymousUser()
        if request.path in OPEN_PATHS or request.path.startswith(
            "/" + settings.STATIC_URL.lstrip("/")
        ):
            return self.get_response(request)
        if request.identity is None and _bearer_token_for_api(request):
            return self.get_response(request)  # DRF authenticates it (glint.api.authentication)
        if request.identity is None:
            return _refuse(request, "A valid client certificate is required to use Glint.")
        user = User.objects.filter(dn=request.identity.subject_dn).first()
        if user is None:
            note_access_request(request.identity.subject_dn, request.identity.issuer_dn)
            return _refuse(
                request,
                "Your certificate is valid, but an admin has not added you yet.",
                request.identity,
            )
        if not user.is_active:
            return _refuse(request, "Your account has been deactivated.", request.identity)
        request.user = user
        return self.get_response(request)
