"""Refused state-changing requests go into the audit trail, wherever the refusal came from.

A 403 to a POST/PUT/PATCH/DELETE (a role check, a missing CSRF token, an account not yet added)
is recorded as ``request.refused`` unless the view recorded the refusal itself. Requests without any
certificate or token identity are not recorded: they are anonymous noise, and the access log has them.
"""

from glint import audit

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class AuditRefusalsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from glint.audit.models import AuditRecord

        response = self.get_response(request)
        if (
            request.method in UNSAFE_METHODS
            and response.status_code == 403
            and (getattr(request, "identity", None) is not None or getattr(request, "user", None) is not None
                 and request.user.is_authenticated)
            and not AuditRecord.objects.filter(request_id=request.request_id).exists()
        ):
            user = request.user if request.user.is_authenticated else None
            audit.record(
                "request.refused",
                outcome=audit.REFUSED,
                user=user,
                details={"method": request.method, "path": request.path},
            )
        return response
