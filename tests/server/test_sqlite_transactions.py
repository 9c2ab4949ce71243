"""SQLite (the default database): concurrent writers wait for each other instead of failing.

``glint serve`` writes every second (the job dispatcher's claim, the poller) while an operator runs
``glint user add``: a CI run once failed with "database is locked" there. In SQLite's deferred mode
a transaction that read before another connection committed can never write; settings.py makes every
transaction IMMEDIATE so that it waits for the write lock at its start instead.
"""

from __future__ import annotations

import subprocess
import sys

from tests.live import glint_env

# Two threads with their own connections: one transaction reads, the other thread then writes, and
# the first writes after it. Prints the errors, one per line.
SCRIPT = """
import threading, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
from glint.accounts import services
from glint.accounts.models import User

call_command("migrate", verbosity=0)
has_read, errors = threading.Event(), []

def read_then_write():
    try:
        with transaction.atomic():
            User.objects.count()
            has_read.set()
            time.sleep(0.5)  # the other thread writes meanwhile, or waits for this transaction
            services.add_user("/CN=First")
    except Exception as error:
        errors.append(repr(error))
    finally:
        connection.close()

def write():
    has_read.wait()
    try:
        services.add_user("/CN=Second")
    except Exception as error:
        errors.append(repr(error))
    finally:
        connection.close()

threads = [threading.Thread(target=read_then_write), threading.Thread(target=write)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("\\n".join(errors))
print(sorted(User.objects.values_list("dn", flat=True)))
"""


def test_a_transaction_that_read_before_another_write_still_writes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=glint_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    *errors, users = result.stdout.strip().splitlines()
    assert not any(errors), errors
    assert users == "['/CN=First', '/CN=Second']"
