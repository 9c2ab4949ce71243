from django.urls import path

from glint.subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("<int:pk>/", views.subscription_detail, name="detail"),
    path("<int:pk>/edit/", views.subscription_edit, name="edit"),
    path("<int:pk>/refresh/", views.subscription_refresh, name="refresh"),
    path("<int:pk>/delete/", views.subscription_delete, name="delete"),
]
