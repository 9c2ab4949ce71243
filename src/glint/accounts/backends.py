"""Django auth backend: users are looked up by id only; the certificate is the credential."""

from django.contrib.auth.backends import BaseBackend

from glint.accounts.models import User


class CertificateBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        return None  # identity comes from the certificate middleware, never from a form

    def get_user(self, user_id):
        return User.objects.filter(pk=user_id, is_active=True).first()
