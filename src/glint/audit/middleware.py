"""Refused state-changing requests go into the audit trail, wherever the refusal came from.

A 403 to a POST/PUT/PATCH/DELETE (a role check, a missing CSRF token, an account not yet added) is
recorded as ``request.refused`` unless the view recorded the refusal itself. Requests without any
certificate or token identity are not recorded: they are anonymous noise, and the access log has
them.
"""

from glint import audit

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class AuditRefusalsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from glint.audit.models import AuditRecord

        response = self.get_response(request)
        if request.method not in UNSAFE_METHODS or response.status_code != 403:
            return response
        user = getattr(
            request, "user", None
        )  # DRF leaves None behind when its authentication fails
        user = user if user is not None and user.is_authenticated else None
        if user is None and getattr(request, "identity", None) is None:
            return response
        if not AuditRecord.objects.filter(request_id=request.request_id).exists():
            audit.record(
                "request.refused",
                outcome=audit.REFUSED,
                user=user,
                details={"method": request.method, "path": request.path},
            )
        return response
