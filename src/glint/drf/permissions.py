"""API permission classes. Group-level checks live in ``glint.accounts.access`` and are shared by
views."""

from rest_framework.permissions import BasePermission


class IsRegisteredUser(BasePermission):
    message = "A registered, active Glint user is required."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class IsAdmin(BasePermission):
    message = "Only Glint admins may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_admin)
