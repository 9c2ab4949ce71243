"""The inventory's part of ``/metrics``: polling, in the Prometheus text format (version 0.0.4).

Probes reach it without a certificate, so it names repos and groups by id only: no names, DNs,
URLs or error texts (an error can quote a cloud's URL). Two queries, whatever the inventory size.
"""

from django.db.models import Count

from glint.inventory.models import Image
from glint.repos.models import Repo

#: (metric, type, help, value of one repo's row from ``_repo_rows``)
REPO_METRICS = [
    (
        "glint_repo_poll_duration_seconds",
        "gauge",
        "Seconds the repo's last inventory poll took.",
        lambda r: r["last_poll_duration"],
    ),
    (
        "glint_repo_poll_success",
        "gauge",
        "1 if the repo's last poll succeeded, 0 if it failed.",
        lambda r: None if r["last_poll_ok"] is None else int(r["last_poll_ok"]),
    ),
    (
        "glint_repo_last_poll_timestamp_seconds",
        "gauge",
        "Unix time of the repo's last poll.",
        lambda r: r["last_poll_at"].timestamp() if r["last_poll_at"] else None,
    ),
    (
        "glint_repo_poll_failures",
        "gauge",
        "Failed polls of the repo in a row.",
        lambda r: r["inventory__failures"] or 0,
    ),
    (
        "glint_repo_poll_errors_total",
        "counter",
        "Failed polls of the repo since it was added.",
        lambda r: r["inventory__errors_total"] or 0,
    ),
    (
        "glint_repo_polls_total",
        "counter",
        "Polls of the repo since it was added.",
        lambda r: r["inventory__polls_total"] or 0,
    ),
    (
        "glint_repo_images",
        "gauge",
        "Images the repo's project can see, as last polled.",
        lambda r: r["images"],
    ),
]


def _repo_rows():
    counts = dict(
        Image.objects.order_by()
        .values("repo_id")
        .annotate(n=Count("pk"))
        .values_list("repo_id", "n")
    )
    rows = Repo.objects.order_by("pk").values(
        "pk",
        "group_id",
        "enabled",
        "last_poll_at",
        "last_poll_ok",
        "last_poll_duration",
        "inventory__failures",
        "inventory__errors_total",
        "inventory__polls_total",
    )
    return [dict(row, images=counts.get(row["pk"], 0)) for row in rows]


def render_metrics() -> list[str]:
    rows = _repo_rows()
    lines = []
    for name, kind, help_text, value_of in REPO_METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for row in rows:
            value = value_of(row)
            if value is not None:
                lines.append(f'{name}{{repo="{row["pk"]}",group="{row["group_id"]}"}} {value:g}')
    lines += [
        "# HELP glint_images Images across all repos, as last polled.",
        "# TYPE glint_images gauge",
        f"glint_images {sum(row['images'] for row in rows)}",
        "# HELP glint_repos Repos known to Glint, by whether they are enabled.",
        "# TYPE glint_repos gauge",
        f'glint_repos{{enabled="true"}} {sum(1 for row in rows if row["enabled"])}',
        f'glint_repos{{enabled="false"}} {sum(1 for row in rows if not row["enabled"])}',
    ]
    return lines
