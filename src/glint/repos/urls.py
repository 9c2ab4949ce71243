from django.urls import path

from glint.repos import views

app_name = "repos"
urlpatterns = [
    path("", views.repo_list, name="list"),
    path("add/", views.repo_add, name="add"),
    path("import/", views.repo_import, name="import"),
    path("<int:pk>/edit/", views.repo_edit, name="edit"),
    path("<int:pk>/validate/", views.repo_validate, name="validate"),
    path("<int:pk>/delete/", views.repo_delete, name="delete"),
]
