"""The one way every API list is paged: ``?limit=&offset=``, at most :attr:`Pagination.max_limit`
items a page.

A list without a cap let any caller ask for the whole table in one answer, and a ``limit`` past
the database's integers (``9223372036854775808``) reached the SQL and answered 500. Capped, a huge
``limit`` is a full page; a negative or non-numeric one is the default page (DRF's reading).
"""

from rest_framework.pagination import LimitOffsetPagination

__all__ = ["Pagination"]


class Pagination(LimitOffsetPagination):
    """Limit/offset pages of ``PAGE_SIZE`` items (the setting), never more than 1,000."""

    max_limit = 1000
