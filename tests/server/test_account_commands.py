"""``glint user add`` and ``glint group add``: what an operator sees when the input is wrong."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.live import run_glint


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    template = tmp_path_factory.mktemp("migrated")
    assert run_glint(template, "migrate").returncode == 0
    return template


@pytest.fixture
def data_dir(migrated, tmp_path):
    """A fresh copy of a migrated data directory (migrating takes seconds; copying does not)."""
    return Path(shutil.copytree(migrated, tmp_path / "data"))


def users(data_dir) -> list[tuple]:
    with sqlite3.connect(data_dir / "glint.sqlite3") as db:
        return db.execute("SELECT dn, is_admin FROM accounts_user").fetchall()


def test_user_add_stores_the_canonical_dn(data_dir):
    result = run_glint(
        data_dir, "user", "add", "--dn", "CN=Jane Doe,OU=Physics,O=Test Grid,C=CA", "--admin"
    )
    assert result.returncode == 0, result.stderr
    assert users(data_dir) == [("/C=CA/O=Test Grid/OU=Physics/CN=Jane Doe", 1)]


def test_a_bad_dn_is_refused_with_the_reason(data_dir):
    result = run_glint(data_dir, "user", "add", "--dn", "not a dn")
    assert result.returncode != 0
    assert "'not a dn'" in result.stderr and "is not TYPE=value" in result.stderr
    assert users(data_dir) == []


def test_an_unknown_group_is_refused_and_nothing_is_added(data_dir):
    result = run_glint(data_dir, "user", "add", "--dn", "/C=CA/CN=Jane", "--group", "nosuch")
    assert result.returncode != 0
    assert "there is no group named 'nosuch' (create it with `glint group add`)" in result.stderr
    assert users(data_dir) == []


def test_group_add_refuses_a_duplicate_and_an_empty_name(data_dir):
    assert run_glint(data_dir, "group", "add", "atlas").returncode == 0
    duplicate = run_glint(data_dir, "group", "add", "atlas")
    assert duplicate.returncode != 0 and "a group named 'atlas' already exists" in duplicate.stderr
    empty = run_glint(data_dir, "group", "add", " ")
    assert empty.returncode != 0 and "a group needs a name" in empty.stderr
