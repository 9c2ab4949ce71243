"""A model field whose value is encrypted before it reaches the database (Pulp's pattern).

Plain strings assigned to the field are sealed at once (``glint.repos.crypto.SealedSecret``), so
plain text never sits in a model instance; the column holds the Fernet token; loading a row gives
the sealed value back without decrypting it. An empty string means "not set" and is stored as is.
"""

from django.core import checks
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from glint.repos.crypto import SealedSecret


def _sealed(value):
    if isinstance(value, str) and value:
        return SealedSecret.seal(value)
    return "" if value is None else value


class SealingAttribute(DeferredAttribute):
    """Seals plain strings on assignment; otherwise Django's usual (deferrable) attribute."""

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = _sealed(value)


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; never unique or indexed (each token is different by design)."""

    descriptor_class = SealingAttribute

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if self._unique or self.db_index:
            errors.append(
                checks.Error(
                    "EncryptedTextField cannot be unique or indexed: "
                    "equal secrets encrypt differently.",
                    obj=self,
                    id="repos.E001",
                )
            )
        return errors

    def from_db_value(self, value, expression, connection):
        return SealedSecret(value) if value else ""

    def to_python(self, value):
        if isinstance(value, SealedSecret):
            return value
        return _sealed(value)

    def get_prep_value(self, value):
        value = _sealed(value)
        return value.token if isinstance(value, SealedSecret) else ""

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
