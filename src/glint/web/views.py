"""Pages that belong to no single app: home, and the probes."""

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect


def home(request):
    return redirect("images:matrix")


def healthz(request):
    """Liveness: the process answers. Reveals nothing."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ready"})
