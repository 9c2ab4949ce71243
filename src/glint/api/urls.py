"""``/api/v1/``: each app registers its viewsets on the one router here."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from glint.accounts.api.views import (
    AccessRequestViewSet,
    GroupViewSet,
    MembershipViewSet,
    UserViewSet,
    WhoAmIView,
)
from glint.audit.api.views import AuditRecordViewSet
from glint.inventory.api.views import GroupRefreshView, RepoRefreshView
from glint.jobs.api.views import JobViewSet, WorkerViewSet
from glint.plans.api.views import ConflictViewSet, ImageRowViewSet, PlanViewSet
from glint.repos.api.views import RepoViewSet
from glint.subscriptions.api.views import SubscriptionViewSet
from glint.transfers.api.views import UploadViewSet

router = DefaultRouter()
router.register("groups", GroupViewSet, basename="group")
router.register("repos", RepoViewSet, basename="repo")
router.register("images", ImageRowViewSet, basename="image")
router.register("conflicts", ConflictViewSet, basename="conflict")
router.register("users", UserViewSet, basename="user")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("access-requests", AccessRequestViewSet, basename="access-request")
router.register("audit", AuditRecordViewSet, basename="audit")
router.register("jobs", JobViewSet, basename="job")
router.register("workers", WorkerViewSet, basename="worker")
router.register("plans", PlanViewSet, basename="plan")
router.register("uploads", UploadViewSet, basename="upload")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("whoami/", WhoAmIView.as_view(), name="api-whoami"),
    path("groups/<int:pk>/refresh/", GroupRefreshView.as_view(), name="api-group-refresh"),
    path("repos/<int:pk>/refresh/", RepoRefreshView.as_view(), name="api-repo-refresh"),
    path("", include("glint.transfers.api.urls")),
    path("", include(router.urls)),
]
