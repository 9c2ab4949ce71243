"""``{% matrix_cell %}``: one cell of the matrix page, in Python rather than an included template.

A matrix page holds a cell per row and repo (100 rows × 20 repos is 2,000 cells); rendered by an
included template, or even with ``format_html``, the cells were most of what the page cost the
server, so each is one f-string with every value escaped by :func:`html.escape`. The markup is
the same for the page and for the live partial, which swaps cells in out of band.
"""

from html import escape

from django import template
from django.urls import reverse
from django.utils.safestring import mark_safe

register = template.Library()

# Cell states a job is at work in: their checkbox is disabled, and the page watches them.
LIVE_STATES = ("queued", "copying", "verifying", "deleting")


@register.simple_tag(takes_context=True)
def matrix_row_cells(context, row, cells):
    """Every cell of ``row``, from its ``(repo, cell)`` pairs: one tag per row, not per cell."""
    return mark_safe("".join(matrix_cell(context, row, repo, cell) for repo, cell in cells))


@register.simple_tag(takes_context=True)
def matrix_cell(context, row, repo, cell, live=False, refreshing=False, oob=False):
    """The ``<td>`` of ``row`` in ``repo``: its checkbox (tick to copy, untick to delete), what the
    repo holds, and a job's progress. ``editable`` comes from the page's context; ``live`` and
    ``refreshing`` from the live partial; ``oob`` swaps the cell out of band."""
    state = cell.state.value
    where = f"{escape(row.id)}:{repo.pk}"
    swap = ' hx-swap-oob="true"' if oob else ""
    parts = [f'<td id="cell-{escape(row.id)}-{repo.pk}" class="cell {escape(state)}"{swap}>']
    if context.get("editable"):
        parts.append(_checkbox(row, repo, cell, where, context.get("keepers", {})))
    parts.append(_content(context, row, repo, cell, where))
    if refreshing:
        parts.append('<span class="badge warn">updating…</span>')
    if live or state in LIVE_STATES:
        parts.append(f'<input type="hidden" name="watch" value="{where}">')
    parts.append("</td>")
    return mark_safe("\n".join(parts))  # noqa: S308 - every value above is escaped


def _checkbox(row, repo, cell, where: str, keepers) -> str:
    """``keepers``: image pk → the subscription that keeps that copy in its repo (its cell is the
    subscription's to change, not a person's)."""
    label = escape(f"{row.name} in {repo.name}")
    checked = " checked" if cell.copies else ""
    if cell.state.value in LIVE_STATES:
        return f'<input type="checkbox" disabled{checked} aria-label="{label} (a job is at work)">'
    keeper = next((keepers[c.pk] for c in cell.copies if c.pk in keepers), None)
    if keeper is not None:
        kept = escape(f"kept by subscription {keeper.name}")
        return (
            f'<input type="checkbox" disabled checked aria-label="{label} ({kept})" title="{kept}">'
        )
    box = (
        f'<input type="checkbox" form="apply-form" name="cell" value="{where}"{checked}'
        f' aria-label="{label}">'
    )
    if cell.copies:
        box += f'<input type="hidden" form="apply-form" name="was" value="{where}">'
    return box


def _content(context, row, repo, cell, where: str) -> str:
    state = cell.state.value
    if cell.copies:
        return _copies(row, cell)
    if state == "copying":
        if cell.progress is None:
            return '<span class="job-state">copying</span> <progress max="100"></progress>'
        return (
            f'<span class="job-state">copying {cell.progress:d}%</span>'
            f' <progress max="100" value="{cell.progress:d}"></progress>'
        )
    if state == "failed":
        return (
            f'<span class="job-state">failed</span> <span class="error small">'
            f"{escape(cell.reason)}</span>\n"
            f'<form class="inline" method="post" action="{escape(reverse("jobs:retry_cell"))}">'
            f'<input type="hidden" name="csrfmiddlewaretoken"'
            f' value="{escape(str(context.get("csrf_token", "")))}">'
            f'<input type="hidden" name="group" value="{repo.group_id}">'
            f'<input type="hidden" name="cell" value="{where}">'
            f'<button type="submit" class="small">Retry</button></form>'
        )
    if state != "absent":
        return f'<span class="job-state">{escape(state)}</span>'
    return ""


def _copies(row, cell) -> str:
    """What the repo holds; the stored format too when the row's copies differ in it (a qcow2
    beside the raw copy Glint converted for EC2)."""
    state, copies = cell.state.value, cell.copies
    if state == "present":
        mark = "✓"
    elif state == "foreign":
        mark = f'◐ <span class="small">{escape(copies[0].visibility)}</span>'
    else:
        mark = escape(state)
    count = f" ×{len(copies)}" if len(copies) > 1 else ""
    badges = "".join(f' <span class="badge warn">{escape(s)}</span>' for s in cell.statuses)
    if row.mixed_formats:
        badges += f' <span class="small format">{escape(cell.disk_formats)}</span>'
    title = escape("".join(f"{c.image_id} ({c.visibility}, {c.status}) " for c in copies))
    return f'<span title="{title}">{mark}{count}{badges}</span>'
