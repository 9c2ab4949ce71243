"""Subscription pages: the group's subscriptions with a form to add one, and one subscription's
page (its list, its last refresh and why it failed, its images), with Refresh, Edit and Delete.

Members see them; managers change them (``services``). Saving refreshes the list at once.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from glint.accounts.access import current_group, require_manager
from glint.accounts.choices import Role
from glint.subscriptions import refresh, services
from glint.subscriptions.forms import SubscriptionForm
from glint.subscriptions.models import Subscription


def _visible(request, pk) -> Subscription:
    return get_object_or_404(services.visible_subscriptions(request.user), pk=pk)


def _say(request, subscription: Subscription, outcome: refresh.RefreshResult) -> None:
    if not outcome.ok:
        messages.error(request, f"{subscription.name}: the list was refused: {outcome.error}")
        return
    parts = [f"{subscription.name}: list version {subscription.list_version} in force"]
    if outcome.fetching:
        parts.append(f"fetching {', '.join(sorted(outcome.fetching))}")
    if outcome.removed:
        parts.append(f"removing {', '.join(outcome.removed)}")
    messages.success(request, "; ".join(parts) + ".")
    if outcome.failed:
        messages.error(request, f"{subscription.name}: images not in step: {outcome.problems}")


def _save(request, form, subscription: Subscription, editing: bool) -> bool:
    if not form.is_valid():
        return False
    data = form.cleaned_data
    fields = ("name", "images", "name_prefix", "refresh_seconds", "on_removal", "conflict_policy")
    for field in (*fields, "enabled"):
        setattr(subscription, field, data[field])
    token = data["token"] or None
    if editing and token == "-":
        token = ""
    try:
        services.save_subscription(
            request.user,
            subscription,
            targets=data["targets"],
            url=data["url"] or None,
            token=token,
            endorser_dn=data["endorser_dn"],
            endorser_ca=data["endorser_ca"],
        )
    except services.SubscriptionRefused as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return False
    return True


@require_http_methods(["GET", "POST"])
def subscription_list(request):
    group = current_group(request)
    if group is None:
        raise Http404("You are in no group yet.")
    can_manage = request.user.role_in(group) == Role.MANAGER
    form = SubscriptionForm(request.POST or None, group=group) if can_manage else None
    if request.method == "POST":
        require_manager(request.user, group)
        subscription = Subscription(group=group, created_by=request.user)
        if _save(request, form, subscription, editing=False):
            _say(request, subscription, refresh.refresh(subscription))
            return redirect("subscriptions:detail", pk=subscription.pk)
    return render(
        request,
        "subscriptions/list.html",
        {
            "group": group,
            "subscriptions": group.subscriptions.prefetch_related("targets"),
            "form": form,
            "can_manage": can_manage,
        },
    )


def subscription_detail(request, pk):
    subscription = _visible(request, pk)
    return render(
        request,
        "subscriptions/detail.html",
        {
            "subscription": subscription,
            "group": subscription.group,
            "fetched": subscription.fetched_images.select_related("upload__job")[:50],
            "can_manage": request.user.role_in(subscription.group) == Role.MANAGER,
        },
    )


@require_http_methods(["GET", "POST"])
def subscription_edit(request, pk):
    subscription = _visible(request, pk)
    require_manager(request.user, subscription.group)
    initial = {
        "name": subscription.name,
        "endorser_dn": subscription.endorser_dn,
        "endorser_ca": subscription.endorser_ca,
        "targets": list(subscription.targets.all()),
        "images": " ".join(subscription.images),
        "name_prefix": subscription.name_prefix,
        "refresh_seconds": subscription.refresh_seconds,
        "on_removal": subscription.on_removal,
        "conflict_policy": subscription.conflict_policy,
        "enabled": subscription.enabled,
    }
    form = SubscriptionForm(
        request.POST or None, initial=initial, group=subscription.group, editing=True
    )
    if request.method == "POST" and _save(request, form, subscription, editing=True):
        messages.success(request, f"Subscription {subscription.name} saved.")
        return redirect("subscriptions:detail", pk=subscription.pk)
    return render(
        request,
        "subscriptions/edit.html",
        {"subscription": subscription, "group": subscription.group, "form": form},
    )


@require_POST
def subscription_refresh(request, pk):
    subscription = _visible(request, pk)
    require_manager(request.user, subscription.group)
    _say(request, subscription, refresh.refresh(subscription))
    return redirect("subscriptions:detail", pk=subscription.pk)


@require_http_methods(["GET", "POST"])
def subscription_delete(request, pk):
    subscription = _visible(request, pk)
    require_manager(request.user, subscription.group)
    if request.method == "POST":
        group = subscription.group
        services.unsubscribe(request.user, subscription)
        messages.success(
            request, f"Unsubscribed from {subscription.name}; its images stay in the repos."
        )
        return redirect(f"{reverse('subscriptions:list')}?group={group.pk}")
    return render(
        request,
        "subscriptions/delete.html",
        {"subscription": subscription, "group": subscription.group},
    )
