from django.urls import path

from glint.inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.matrix, name="matrix"),
    path("conflicts/", views.conflicts, name="conflicts"),
]
