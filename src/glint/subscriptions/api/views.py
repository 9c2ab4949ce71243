"""``/api/v1/subscriptions/``: a group's subscriptions to signed image lists.

Members see them; managers add, change, refresh and remove them. Saving one refreshes it at once,
and the answer carries the refresh's outcome, so a caller sees whether the list verified.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from glint.accounts.access import require_manager
from glint.subscriptions import refresh, services
from glint.subscriptions.api.serializers import RefreshResultSerializer, SubscriptionSerializer
from glint.subscriptions.models import Subscription


def _refused(exc: services.SubscriptionRefused) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field or "non_field_errors": [exc.message]})


class SubscriptionViewSet(viewsets.ModelViewSet):
    queryset = Subscription.objects.none()  # for the schema; get_queryset picks the caller's
    serializer_class = SubscriptionSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        found = services.visible_subscriptions(self.request.user).prefetch_related("targets")
        if self.request.query_params.get("group"):
            found = found.filter(group_id=self.request.query_params["group"])
        return found

    def _save(self, serializer, instance: Subscription) -> Subscription:
        data = dict(serializer.validated_data)
        targets = data.pop("targets", None)
        url, token = data.pop("url", None), data.pop("token", None)
        endorser_dn = data.pop("endorser_dn", instance.endorser_dn)
        endorser_ca = data.pop("endorser_ca", instance.endorser_ca)
        for field, value in data.items():
            setattr(instance, field, value)
        if targets is None:
            targets = list(instance.targets.all()) if instance.pk else []
        try:
            return services.save_subscription(
                self.request.user,
                instance,
                targets=targets,
                url=url,
                token=token,
                endorser_dn=endorser_dn,
                endorser_ca=endorser_ca,
            )
        except services.SubscriptionRefused as exc:
            raise _refused(exc) from None

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = serializer.validated_data["group"]
        require_manager(request.user, group)
        subscription = self._save(serializer, Subscription(group=group, created_by=request.user))
        outcome = refresh.refresh(subscription)
        body = {**self.get_serializer(subscription).data, "refresh": _result(outcome)}
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        subscription = self.get_object()
        require_manager(request.user, subscription.group)
        serializer = self.get_serializer(subscription, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.validated_data.pop("group", None)  # a subscription stays in its group
        self._save(serializer, subscription)
        return Response(self.get_serializer(subscription).data)

    def perform_destroy(self, instance):
        services.unsubscribe(self.request.user, instance)

    @extend_schema(request=None, responses=RefreshResultSerializer)
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Fetch, verify and apply the list now; the outcome (a refused list: ``ok`` false)."""
        subscription = self.get_object()
        require_manager(request.user, subscription.group)
        return Response(_result(refresh.refresh(subscription)))


def _result(outcome: refresh.RefreshResult) -> dict:
    return RefreshResultSerializer(outcome).data
