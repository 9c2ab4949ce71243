"""Jobs: copies, deletes and uploads as rows with states, progress and leases; their pages; and
the group matrix as people see it, job cells included (``glint.jobs.matrix``)."""
