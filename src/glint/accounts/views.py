"""Account pages: My account, people, groups and members, access requests.

Pages check rights before showing a form; ``glint.accounts.services`` checks them again (and audits)
when anything changes, so a hand-made POST is refused just the same. Another group's pages are a
404 (``glint.accounts.access``). Every change is a POST with Django's CSRF token.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from glint.accounts import services
from glint.accounts.access import require_manager, visible_group
from glint.accounts.dn import DNError
from glint.accounts.forms import (
    ApproveForm,
    DefaultGroupForm,
    GroupForm,
    MemberForm,
    PersonForm,
    RoleForm,
    UserFlagsForm,
)
from glint.accounts.models import AccessRequest, Group, Membership, User


def _require_admin(request) -> None:
    if not request.user.is_admin:
        raise PermissionDenied("Only Glint admins may see this page.")


def _managed_group(request, pk) -> Group:
    group = visible_group(request.user, pk)
    require_manager(request.user, group)
    return group


@require_POST
def switch_group(request):
    """Remember the chosen group as the person's default, then go back to where they were."""
    group = visible_group(request.user, request.POST.get("group"))
    services.set_default_group(request.user, group)
    return redirect(_same_section(request))


def _same_section(request) -> str:
    """The page to show after a switch: the list the person was on, without its ``?group=``.

    A page about one object (an image, a repo) belongs to the old group, so it gives way to the
    new group's matrix.
    """
    target = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return "/"
    path = urlsplit(target).path
    try:
        match = resolve(path)
    except Resolver404:
        return "/"
    return "/" if match.kwargs else path


# My account ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def my_account(request):
    user = request.user
    form = DefaultGroupForm(
        request.POST or None, user=user, initial={"default_group": user.default_group}
    )
    if request.method == "POST" and form.is_valid():
        services.set_default_group(user, form.cleaned_data["default_group"])
        messages.success(request, "Default group saved.")
        return redirect("accounts:me")
    return render(
        request,
        "accounts/me.html",
        {
            "form": form,
            "memberships": user.memberships.select_related("group"),
            "server_url": request.build_absolute_uri("/").rstrip("/"),
            "token_identities": user.token_identities.all(),
            "tokens_enabled": bool(settings.GLINT_TOKEN_ISSUERS),
        },
    )


# People (admins) ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def user_list(request):
    _require_admin(request)
    form = PersonForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.create_user(request.user, form.cleaned_data["dn"])
        except (services.AccountError, DNError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"Added {user.dn}. Put them in a group so they can see something."
            )
            return redirect("accounts:user_edit", pk=user.pk)
    users = User.objects.prefetch_related("memberships__group")
    return render(request, "accounts/users.html", {"form": form, "users": users})


@require_http_methods(["GET", "POST"])
def user_edit(request, pk):
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    form = UserFlagsForm(
        request.POST or None, initial={"is_admin": person.is_admin, "is_active": person.is_active}
    )
    if request.method == "POST" and form.is_valid():
        services.update_user(request.user, person, **form.cleaned_data)
        messages.success(request, f"Saved {person.dn}.")
        return redirect("accounts:user_edit", pk=person.pk)
    return render(
        request,
        "accounts/user_edit.html",
        {
            "person": person,
            "form": form,
            "is_self": person.pk == request.user.pk,
            "memberships": person.memberships.select_related("group"),
        },
    )


@require_http_methods(["GET", "POST"])
def user_delete(request, pk):
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    if request.method == "POST":
        services.delete_user(request.user, person)
        messages.success(request, f"Deleted {person.dn} and their memberships.")
        return redirect("accounts:users")
    return render(
        request,
        "accounts/user_delete.html",
        {
            "person": person,
            "memberships": person.memberships.select_related("group"),
        },
    )


# Groups -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def group_list(request):
    """Admins: every group, and a form for a new one. Managers: the groups they manage."""
    groups = request.user.managed_groups()
    if not request.user.is_admin and not groups.exists():
        raise PermissionDenied("Only admins and group managers manage groups.")
    form = GroupForm(request.POST or None) if request.user.is_admin else None
    if request.method == "POST":
        _require_admin(request)
        if form.is_valid():
            try:
                group = services.create_group(request.user, **form.cleaned_data)
            except services.AccountError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(request, f"Group {group.name} added. Add its managers next.")
                return redirect("accounts:group", pk=group.pk)
    return render(request, "accounts/groups.html", {"form": form, "groups": groups})


@require_http_methods(["GET", "POST"])
def group_detail(request, pk):
    """A group's members: add by DN, change roles, remove (the group's managers and admins)."""
    group = _managed_group(request, pk)
    form = MemberForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.add_member_by_dn(
                request.user, group, form.cleaned_data["dn"], form.cleaned_data["role"]
            )
        except (services.AccountError, DNError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"{membership.user.dn} is now a {membership.role} of {group.name}."
            )
            return redirect("accounts:group", pk=group.pk)
    return render(
        request,
        "accounts/group.html",
        {
            "group": group,
            "form": form,
            "memberships": group.memberships.select_related("user"),
            "roles": RoleForm.base_fields["role"].choices,
        },
    )


@require_POST
def membership_role(request, pk):
    membership = get_object_or_404(Membership, pk=pk, group__in=request.user.visible_groups())
    form = RoleForm(request.POST)
    if form.is_valid():
        services.set_membership(
            request.user, membership.group, membership.user, form.cleaned_data["role"]
        )
        messages.success(
            request,
            f"{membership.user.dn} is now a {form.cleaned_data['role']} of {membership.group}.",
        )
    else:
        messages.error(request, "Choose manager or member.")
    return redirect("accounts:group", pk=membership.group_id)


@require_POST
def membership_remove(request, pk):
    membership = get_object_or_404(Membership, pk=pk, group__in=request.user.visible_groups())
    services.remove_membership(request.user, membership)
    messages.success(request, f"Removed {membership.user.dn} from {membership.group}.")
    return redirect("accounts:group", pk=membership.group_id)


@require_http_methods(["GET", "POST"])
def group_edit(request, pk):
    _require_admin(request)
    group = get_object_or_404(Group, pk=pk)
    form = GroupForm(
        request.POST or None,
        initial={
            "name": group.name,
            "description": group.description,
            "copies_run_at": group.copies_run_at,
            "raw_copies_format": group.raw_copies_format,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_group(request.user, group, **form.cleaned_data)
        except services.AccountError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Group saved as {group.name}.")
            return redirect("accounts:group", pk=group.pk)
    return render(request, "accounts/group_edit.html", {"group": group, "form": form})


@require_http_methods(["GET", "POST"])
def group_delete(request, pk):
    _require_admin(request)
    group = get_object_or_404(Group, pk=pk)
    if request.method == "POST":
        services.delete_group(request.user, group)
        messages.success(request, f"Group {group.name} deleted. Nothing was changed in the clouds.")
        return redirect("accounts:groups")
    return render(
        request,
        "accounts/group_delete.html",
        {
            "group": group,
            "effects": services.group_deletion_effects(group),
        },
    )


# Access requests (admins) -------------------------------------------------------------------------


def request_list(request):
    _require_admin(request)
    return render(
        request,
        "accounts/requests.html",
        {
            "requests": AccessRequest.objects.all(),
            "form": ApproveForm(auto_id=False),
            "has_groups": Group.objects.exists(),
        },
    )


@require_POST
def request_approve(request, pk):
    _require_admin(request)
    access_request = get_object_or_404(AccessRequest, pk=pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a group and a role.")
        return redirect("accounts:requests")
    user = services.approve_request(
        request.user, access_request, form.cleaned_data["group"], form.cleaned_data["role"]
    )
    messages.success(
        request,
        f"{user.dn} can now sign in, as a {form.cleaned_data['role']} of "
        f"{form.cleaned_data['group']}.",
    )
    return redirect(reverse("accounts:requests"))


@require_POST
def request_dismiss(request, pk):
    _require_admin(request)
    access_request = get_object_or_404(AccessRequest, pk=pk)
    services.dismiss_request(request.user, access_request)
    messages.success(request, f"Dismissed the request of {access_request.dn}.")
    return redirect("accounts:requests")
