from django.shortcuts import render

from glint.accounts.access import current_group


def repo_list(request):
    return render(request, "web/placeholder.html", {"title": "Repos", "group": current_group(request)})
