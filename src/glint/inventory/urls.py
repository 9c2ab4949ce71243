from django.urls import path

from glint.inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.matrix, name="matrix"),
    path("conflicts/", views.conflicts, name="conflicts"),
    path("conflicts/<slug:conflict_id>/acknowledge/", views.acknowledge_conflict, name="acknowledge"),
    path("refresh/", views.refresh, name="refresh"),
    path("poll-status/", views.poll_status, name="poll_status"),
    path("<slug:row_id>/", views.detail, name="detail"),
    path("<slug:row_id>/hide/", views.hide, name="hide"),
    path("<slug:row_id>/show/", views.show, name="show"),
]
