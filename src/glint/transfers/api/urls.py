"""The upload and download endpoints that are not plain router routes (see ``glint.api.urls``)."""

from django.urls import path

from glint.transfers.api.views import DownloadView, UploadDataView

urlpatterns = [
    path("uploads/<int:pk>/data/", UploadDataView.as_view(), name="api-upload-data"),
    path("images/<str:pk>/download/", DownloadView.as_view(), name="api-image-download"),
]
