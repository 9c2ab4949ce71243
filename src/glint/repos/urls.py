from django.urls import path

from glint.repos import views

app_name = "repos"
urlpatterns = [
    path("", views.repo_list, name="list"),
]
