"""Jobs: copies, deletes and uploads as rows with states, progress and leases."""
