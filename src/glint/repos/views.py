"""Repo pages: list, add, edit, validate, delete (with a confirmation) and clouds.yaml import.

Members see their groups' repos; managers and admins change them; another group's repo is a 404
(``glint.accounts.access``). Every change is a POST with Django's CSRF token.
"""

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from glint.accounts.access import current_group, require_manager
from glint.accounts.choices import Role
from glint.repos import services
from glint.repos.choices import CloudKind
from glint.repos.forms import ImportForm, RepoForm
from glint.repos.models import Repo


def _list_url(group) -> str:
    return f"{reverse('repos:list')}?group={group.pk}"


def _managed_group(request):
    """The page's group, refused (403) unless the person manages it."""
    group = current_group(request)
    if group is None:
        raise Http404("You are in no group yet.")
    require_manager(request.user, group)
    return group


def _managed_repo(request, pk) -> Repo:
    repo = services.get_visible_repo(request.user, pk)
    require_manager(request.user, repo.group)
    return repo


def repo_list(request):
    group = current_group(request)
    repos = list(group.repos.all()) if group else []
    shared = services.shared_with(repos, request.user)
    for repo in repos:
        repo.shared_with = shared.get(repo.pk, [])
    return render(
        request,
        "repos/list.html",
        {
            "group": group,
            "repos": repos,
            "can_manage": group is not None and request.user.role_in(group) == Role.MANAGER,
            "kinds": CloudKind.choices,
        },
    )


def _save_form(form: RepoForm, group) -> bool:
    """Validate the form, then the cloud; errors land on the form. True when saved."""
    if not form.is_valid():
        return False
    repo = form.save(commit=False)
    repo.group = group
    try:
        services.save_repo(repo, cleared=form.cleared)
    except services.RepoValidationError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return False
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    return True


def _form_page(request, form: RepoForm, group, repo: Repo | None):
    return render(
        request,
        "repos/form.html",
        {
            "form": form,
            "group": group,
            "repo": repo,
            "kind": form.instance.kind,
            "kind_label": CloudKind(form.instance.kind).label,
            "kinds": CloudKind.choices,
        },
    )


@require_http_methods(["GET", "POST"])
def repo_add(request):
    """The add form of the kind in ``?kind=`` (default OpenStack), with that kind's fields."""
    group = _managed_group(request)
    kind = request.GET.get("kind") or CloudKind.OPENSTACK
    if kind not in CloudKind.values:
        raise BadRequest(f"There is no cloud kind {kind!r}.")
    form = RepoForm(request.POST or None, instance=Repo(group=group, kind=kind))
    if request.method == "POST" and _save_form(form, group):
        messages.success(
            request, f"Repo {form.instance.name} added: the cloud accepted its credentials."
        )
        return redirect(_list_url(group))
    return _form_page(request, form, group, None)


@require_http_methods(["GET", "POST"])
def repo_edit(request, pk):
    repo = _managed_repo(request, pk)
    form = RepoForm(request.POST or None, instance=repo)
    if request.method == "POST" and _save_form(form, repo.group):
        messages.success(request, f"Repo {repo.name} saved: the cloud accepted its settings.")
        return redirect(_list_url(repo.group))
    return _form_page(request, form, repo.group, repo)


@require_POST
def repo_validate(request, pk):
    repo = _managed_repo(request, pk)
    try:
        project = services.validate_repo(repo)
    except services.RepoValidationError as exc:
        messages.error(request, f"Repo {repo.name} does not work: {exc.message}")
    else:
        reached = (
            f"account {project.project_id}"
            if repo.kind == CloudKind.EC2
            else f"project {project.project_name or ''} ({project.project_id})"
        )
        messages.success(request, f"Repo {repo.name} works: {reached}.")
    return redirect(_list_url(repo.group))


@require_http_methods(["GET", "POST"])
def repo_delete(request, pk):
    repo = _managed_repo(request, pk)
    if request.method == "POST":
        group = repo.group
        services.delete_repo(repo)
        messages.success(request, f"Repo {repo.name} deleted. Nothing was changed in the cloud.")
        return redirect(_list_url(group))
    return render(
        request,
        "repos/confirm_delete.html",
        {"repo": repo, "group": repo.group, "effects": services.deletion_effects(repo)},
    )


@require_http_methods(["GET", "POST"])
def repo_import(request):
    group = _managed_group(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    results = None
    if request.method == "POST" and form.is_valid():
        ca_bundle = form.cleaned_data["ca_bundle"]
        try:
            results = services.import_clouds_yaml(
                form.cleaned_data["file"],
                group,
                names=form.cleaned_data["clouds"],
                read_ca=(lambda path: ca_bundle) if ca_bundle else services.refuse_ca_path,
                site=form.cleaned_data["site"],
            )
        except services.RepoValidationError as exc:
            form.add_error("file", exc.message)
    return render(request, "repos/import.html", {"form": form, "group": group, "results": results})
