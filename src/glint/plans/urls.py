from django.urls import path

from glint.plans import views

app_name = "plans"
urlpatterns = [
    path("", views.create, name="create"),
    path("live/", views.live_cells, name="live_cells"),
    path("keep/<slug:row_id>/", views.keep, name="keep"),
    path("conflicts/<slug:conflict_id>/delete/", views.delete_duplicate, name="delete_duplicate"),
    path("<int:plan_id>/", views.detail, name="detail"),
    path("<int:plan_id>/apply/", views.apply, name="apply"),
]
