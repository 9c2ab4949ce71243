from django.shortcuts import render

from glint.accounts.access import current_group


def matrix(request):
    return render(request, "web/placeholder.html", {"title": "Images", "group": current_group(request)})


def conflicts(request):
    return render(request, "web/placeholder.html", {"title": "Conflicts", "group": current_group(request)})
