"""What the inventory tells the apps above it, without importing them."""

from django.dispatch import Signal

#: Sent by the poller after polls that changed some repos' listings, with ``repo_ids``; the
#: matrix (``glint.jobs.matrix``) rebuilds its cached rows for those groups.
inventory_changed = Signal()
