"""What Django's debug error page may show of the settings (``GLINT_DEBUG`` only; never in
production).

Django hides settings whose names look secret (``KEY``, ``PASS``, ``TOKEN``...). Glint's broker
URL does not look like one by name but carries the broker's password, so it is hidden too.
"""

import re

from django.views.debug import SafeExceptionReporterFilter


class GlintReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|BROKER", flags=re.I
    )
