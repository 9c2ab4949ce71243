"""Pages that belong to no single app: home, and the probes."""

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from glint.inventory.metrics import render_metrics
from glint.jobs.metrics import render_job_metrics

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds the readiness probe waits for the broker.
BROKER_TIMEOUT = 2


def home(request):
    return redirect("images:matrix")


@require_GET
def metrics(request):
    """Prometheus scrape endpoint; GET only, no identity needed, nothing private: the
    inventory's polls, then the jobs."""
    lines = [*render_metrics(), *render_job_metrics()]
    return HttpResponse("\n".join(lines) + "\n", content_type=METRICS_CONTENT_TYPE)


def healthz(request):
    """Liveness: the process answers. Reveals nothing."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: the database answers, and so does the broker when one is configured (jobs and
    the shared per-person counts go through it). Says which is down, nothing more."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "database unavailable"}, status=503)
    if settings.GLINT_BROKER_URL and not _broker_answers(settings.GLINT_BROKER_URL):
        return JsonResponse({"status": "broker unavailable"}, status=503)
    return JsonResponse({"status": "ready"})


def _broker_answers(url: str) -> bool:
    import redis  # with a broker configured, the celery extra (and redis-py) is installed

    client = redis.Redis.from_url(
        url, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
