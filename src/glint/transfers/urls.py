from django.urls import path

from glint.transfers import views

app_name = "transfers"
urlpatterns = [
    path("new/", views.upload_page, name="upload"),
]

#: ``/downloads/``: a row's bytes in another disk format (url names ``downloads:…``).
download_urlpatterns = (
    [path("<slug:row_id>/<str:disk_format>/", views.conversion_page, name="conversion")],
    "downloads",
)
