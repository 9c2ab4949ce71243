"""``/jobs/``: the jobs pages (``glint.jobs.views``)."""

from django.urls import path

from glint.jobs import views as job_views

app_name = "jobs"
urlpatterns = [
    path("", job_views.job_list, name="list"),
    path("retry-cell/", job_views.retry_cell, name="retry_cell"),
    path("workers/", job_views.worker_list, name="workers"),
    path("<int:job_id>/", job_views.job_detail, name="detail"),
    path("<int:job_id>/cancel/", job_views.cancel, name="cancel"),
    path("<int:job_id>/retry/", job_views.retry, name="retry"),
]
