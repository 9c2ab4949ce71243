"""How the pages say the domain errors services raise (``glint.errors``): a 404 page.

Services raise :class:`glint.errors.NotFound` instead of ``Http404`` so that they do not depend on
being called from a page; this middleware (the innermost, so it sees a view's exception first)
answers it as Django answers ``Http404``.
"""

from django.http import Http404

from glint.errors import NotFound

__all__ = ["DomainErrorMiddleware"]


class DomainErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            raise Http404(exception.message) from exception
        return None
