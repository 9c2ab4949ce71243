"""``GLINT_LOG_FORMAT=json``: every log line is one JSON object with the request id and the
person's DN in a request, the job while one runs, and the repo a line is about; a bad value is
refused by name."""

from __future__ import annotations

import json
import logging

from glint.current_request import request_id_var, request_var
from glint.logs import JsonFormatter, job_context
from tests.live import run_glint


class _Request:
    class user:  # noqa: N801 - stands for request.user
        is_authenticated = True
        dn = "/C=CA/O=Glint Test Grid/CN=Log Person"


def _line(**extra) -> dict:
    record = logging.LogRecord("glint.test", logging.INFO, __file__, 1, "copied %s", ("x",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_the_request_the_person_and_the_job():
    request_token, id_token = request_var.set(_Request()), request_id_var.set("req-42")
    try:
        with job_context(7):
            line = _line(repo=3)
    finally:
        request_var.reset(request_token)
        request_id_var.reset(id_token)
    assert line["message"] == "copied x" and line["level"] == "INFO"
    assert line["request_id"] == "req-42" and line["dn"] == _Request.user.dn
    assert line["job"] == 7 and line["repo"] == 3 and line["logger"] == "glint.test"
    assert "job" not in _line() and "request_id" not in _line(), "nothing outside the context"


def test_a_job_line_carries_its_requester_and_its_repos_outside_a_request():
    with job_context(9, "/C=CA/O=Glint Test Grid/CN=Asker", [4, None, 2, 4]):
        line = _line()
    assert (line["job"], line["dn"], line["repos"]) == (
        9,
        "/C=CA/O=Glint Test Grid/CN=Asker",
        [2, 4],
    )


def test_the_command_line_logs_json_and_refuses_an_unknown_format(tmp_path):
    assert run_glint(tmp_path, "migrate").returncode == 0
    result = run_glint(tmp_path, "group", "add", "logged", GLINT_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("group.add ok" in line["message"] for line in lines), result.stderr
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    bad = run_glint(tmp_path, "group", "add", "other", GLINT_LOG_FORMAT="xml")
    assert bad.returncode != 0 and "GLINT_LOG_FORMAT" in bad.stderr


class _Lines(logging.Handler):
    """Formats each record as it is logged, in the logging thread, as a real handler does."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[str, dict]] = []

    def emit(self, record):
        self.lines.append((record.threadName, json.loads(self.format(record))))


def test_a_copy_s_own_threads_log_with_the_job():
    """The warning of a source read resumed mid-copy comes from the copy's reader thread, not
    the job's: it still names the job. Fake cloud: a download cut at a given byte on demand (the
    fault test of tests/replication/test_engine_faults.py)."""
    from glint.replication import CopySource, CopyTarget, copy_image
    from tests.replication.fakes import FakeCloud

    source, target = FakeCloud(), FakeCloud()
    image_id = source.add(b"x" * 300_000, name="img")
    source.break_read_at = 100_000
    handler, logger = _Lines(), logging.getLogger("glint")
    logger.addHandler(handler)
    try:
        with job_context(11, "/CN=Asker", [5]):
            result = copy_image(
                CopySource(source.driver(), image_id, "r"), [CopyTarget("t", target.driver())]
            )
    finally:
        logger.removeHandler(handler)
    assert result.ok
    (resumed,) = [(t, line) for t, line in handler.lines if "resuming" in line["message"]]
    assert resumed[0] == "glint-copy-read"
    assert (resumed[1]["job"], resumed[1]["dn"], resumed[1]["repos"]) == (11, "/CN=Asker", [5])
