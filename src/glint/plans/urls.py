from django.urls import path

from glint.plans import views

app_name = "plans"
urlpatterns = [
    path("", views.create, name="create"),
    path("live/", views.live_cells, name="live_cells"),
    path("keep/<slug:row_id>/", views.keep, name="keep"),
    path("conflicts/<slug:conflict_id>/delete/", views.delete_duplicate, name="delete_duplicate"),
    path("conflicts/<slug:conflict_id>/rename/", views.rename_copy, name="rename"),
    path("sync-properties/<slug:row_id>/", views.sync_properties, name="sync_properties"),
    path("<int:plan_id>/", views.detail, name="detail"),
    path("<int:plan_id>/apply/", views.apply, name="apply"),
]

#: ``/images/``: the matrix pages (url names ``images:…``), mounted after the inventory's
#: ``/images/refresh/`` and ``/images/poll-status/``.
image_urlpatterns = (
    [
        path("", views.matrix, name="matrix"),
        path("conflicts/", views.conflicts, name="conflicts"),
        path(
            "conflicts/<slug:conflict_id>/acknowledge/",
            views.acknowledge_conflict,
            name="acknowledge",
        ),
        path("<slug:row_id>/", views.detail_of_row, name="detail"),
        path("<slug:row_id>/hide/", views.hide, name="hide"),
        path("<slug:row_id>/show/", views.show, name="show"),
    ],
    "images",
)
