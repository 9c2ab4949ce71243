"""The upload and download endpoints that are not plain router routes (see ``glint.api.urls``).

The data URL has no trailing slash, unlike the other API URLs: ``curl -T FILE URL`` appends the
file's name to a URL that ends in ``/``.
"""

from django.urls import path

from glint.transfers.api.views import DownloadView, UploadDataView

urlpatterns = [
    path("uploads/<int:pk>/data", UploadDataView.as_view(), name="api-upload-data"),
    path("images/<str:pk>/download/", DownloadView.as_view(), name="api-image-download"),
]
