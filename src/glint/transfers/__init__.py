"""Uploads (from a file or a web link, to many repos at once) and downloads of matrix rows.

``formats`` (disk-format detection) and ``fetch`` (safe web-link fetching) are plain Python; the
rest is a Django app whose uploads run as ``upload`` jobs (``upload_job``).
"""
