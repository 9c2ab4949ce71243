from django.urls import path

from glint.transfers import views

app_name = "transfers"
urlpatterns = [
    path("new/", views.upload_page, name="upload"),
]
