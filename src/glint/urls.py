"""Root URLs: the UI at ``/<app>/`` and the API at ``/api/v1/`` (NetBox's parallel prefixes)."""

from django.urls import include, path

from glint.plans.urls import image_urlpatterns
from glint.transfers.urls import download_urlpatterns
from glint.web import views as web_views

urlpatterns = [
    path("", web_views.home, name="home"),
    path("healthz", web_views.healthz, name="healthz"),
    path("readyz", web_views.readyz, name="readyz"),
    path("metrics", web_views.metrics, name="metrics"),
    path("accounts/", include("glint.accounts.urls")),
    path("audit/", include("glint.audit.urls")),
    path("repos/", include("glint.repos.urls")),
    path("images/", include("glint.inventory.urls")),  # refresh/, poll-status/: before the rows
    path("images/", include(image_urlpatterns)),
    path("plans/", include("glint.plans.urls")),
    path("jobs/", include("glint.jobs.urls")),
    path("uploads/", include("glint.transfers.urls")),
    path("subscriptions/", include("glint.subscriptions.urls")),
    path("downloads/", include(download_urlpatterns)),
    path("api/v1/", include("glint.api.urls")),
]
