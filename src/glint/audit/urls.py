from django.urls import path

from glint.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
]
