from django.urls import path

from glint.accounts import views

app_name = "accounts"
urlpatterns = [
    path("switch-group/", views.switch_group, name="switch_group"),
    path("me/", views.my_account, name="me"),
    path("users/", views.user_list, name="users"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/delete/", views.user_delete, name="user_delete"),
    path("groups/", views.group_list, name="groups"),
    path("groups/<int:pk>/", views.group_detail, name="group"),
    path("groups/<int:pk>/edit/", views.group_edit, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
    path("memberships/<int:pk>/role/", views.membership_role, name="membership_role"),
    path("memberships/<int:pk>/remove/", views.membership_remove, name="membership_remove"),
    path("requests/", views.request_list, name="requests"),
    path("requests/<int:pk>/approve/", views.request_approve, name="request_approve"),
    path("requests/<int:pk>/dismiss/", views.request_dismiss, name="request_dismiss"),
]
