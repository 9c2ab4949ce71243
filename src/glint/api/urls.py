"""``/api/v1/``: each app registers its viewsets on the one router here."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from glint.accounts.api.views import GroupViewSet, WhoAmIView

router = DefaultRouter()
router.register("groups", GroupViewSet, basename="group")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("whoami/", WhoAmIView.as_view(), name="api-whoami"),
    path("", include(router.urls)),
]
