from django.urls import path

from glint.inventory import views

app_name = "inventory"
urlpatterns = [
    path("refresh/", views.refresh, name="refresh"),
    path("poll-status/", views.poll_status, name="poll_status"),
]
