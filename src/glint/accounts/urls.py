from django.urls import path

from glint.accounts import views

app_name = "accounts"
urlpatterns = [
    path("switch-group/", views.switch_group, name="switch_group"),
]
