"""What the command line prints of the server's text: control characters escaped, visibly."""

from __future__ import annotations

import pytest

from glint.cli.client_commands import print_table
from glint.cli.output import shown


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u202egpj.exe", "\\u202egpj.exe"),
        ("\u2066iso\u2069", "\\u2066iso\\u2069"),
        ("lone \ud800", "lone \\ud800"),
        ("ubuntu-24.04 ✓ é 😀 \u200f", "ubuntu-24.04 ✓ é 😀 \u200f"),  # other text stays as it is
        (None, ""),
    ],
)
def test_shown_escapes_what_glint_refuses_in_names(raw, escaped):
    assert shown(raw) == escaped


def test_a_table_row_cannot_forge_another(capsys):
    print_table(
        [{"name": "evil\r\nforged  ✓", "size": 1}, {"name": "fine", "size": 2}],
        [("name", "NAME"), ("size", "SIZE")],
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "evil\\r\\nforged  ✓  1" and len(lines) == 3
