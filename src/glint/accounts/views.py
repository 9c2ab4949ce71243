"""Account pages."""

from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from glint.accounts.access import visible_group
from glint.accounts.models import User


@require_POST
def switch_group(request):
    """Remember the chosen group as the person's default, then go back to where they were."""
    group = visible_group(request.user, request.POST.get("group"))
    User.objects.filter(pk=request.user.pk).update(default_group=group)
    target = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    # Drop any ?group= of the previous page so the new default applies.
    return redirect(target.split("?", 1)[0])
