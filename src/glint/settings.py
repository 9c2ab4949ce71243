"""Django settings for Glint, built from ``glint.config`` (environment + optional TOML file).

Read these through ``django.conf.settings``; the replication engine and cloud drivers never read
settings at all (values are passed in). Production defaults are the safe ones: DEBUG off, secure
cookies, no trusted proxies.
"""

from pathlib import Path

from glint import config

GLINT = config.load()
DATA_DIR = Path(GLINT["data_dir"])
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)

SECRET_KEY = config.secret_key(DATA_DIR)
GLINT_CREDENTIAL_KEYS = config.credential_keys(DATA_DIR)
DEBUG = bool(GLINT["debug"])
ALLOWED_HOSTS = list(GLINT["allowed_hosts"])

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "glint.accounts",
    "glint.repos",
    "glint.inventory",
    "glint.jobs",
    "glint.plans",
    "glint.audit",
    "glint.transfers",
    "glint.subscriptions",
    "glint.web",
    "glint.api",
]

MIDDLEWARE = [
    "glint.web.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "glint.web.security.ContentSecurityPolicyMiddleware",
    "glint.audit.middleware.AuditRefusalsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "glint.accounts.middleware.CertificateIdentityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "glint.web.errors.DomainErrorMiddleware",  # innermost: sees a view's exception first
]

ROOT_URLCONF = "glint.urls"
WSGI_APPLICATION = "glint.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["glint.accounts.backends.CertificateBackend"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
                "glint.web.context_processors.glint_context",
            ],
        },
    },
]

_db = config.parse_database_url(str(GLINT["database_url"]), DATA_DIR)
DATABASES = {
    "default": {
        "ENGINE": _db.engine,
        "NAME": _db.name,
        "USER": _db.user,
        "PASSWORD": _db.password,
        "HOST": _db.host,
        "PORT": _db.port,
        "OPTIONS": (
            # WAL lets the poller and job threads write while pages read. IMMEDIATE: a transaction
            # takes the write lock at BEGIN and waits ``timeout`` for it there. In SQLite's default
            # (deferred) mode a transaction that reads and then writes fails at once with "database
            # is locked" when another connection committed in between: no waiting helps it then.
            {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
            }
            if _db.engine.endswith("sqlite3")
            else {}
        ),
        "CONN_MAX_AGE": 0 if _db.engine.endswith("sqlite3") else 60,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# Security: the embedded server always speaks TLS, so cookies are secure by default.
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = (
    True  # pages carry the token in the markup (hx-headers), scripts never read the cookie
)
# Sent only on HTTPS responses (direct TLS, or a trusted proxy's X-Forwarded-Proto: https).
SECURE_HSTS_SECONDS = 365 * 24 * 3600

GLINT_TRUSTED_PROXIES = list(GLINT["trusted_proxies"])
GLINT_POLL_INTERVAL = int(GLINT["poll_interval"])
GLINT_POLL_TIMEOUT = int(GLINT["poll_timeout"])
GLINT_POLL_WORKERS = int(GLINT["poll_workers"])
GLINT_JOB_RUNNER = config.job_runner(str(GLINT["job_runner"]))
GLINT_BROKER_URL = config.broker_url(str(GLINT["broker_url"]), GLINT_JOB_RUNNER)
DEFAULT_EXCEPTION_REPORTER_FILTER = (
    "glint.web.debug.GlintReporterFilter"  # hides the broker URL too
)
GLINT_JOB_WORKERS = int(GLINT["job_workers"])
GLINT_JOB_PER_REPO_LIMIT = int(GLINT["job_per_repo_limit"])
GLINT_JOB_PER_SOURCE_LIMIT = int(GLINT["job_per_source_limit"])
GLINT_JOB_RETRY_LIMIT = int(GLINT["job_retry_limit"])
GLINT_JOB_RETRY_BASE = int(GLINT["job_retry_base"])
GLINT_JOB_RETRY_MAX = int(GLINT["job_retry_max"])
GLINT_JOB_LEASE_SECONDS = int(GLINT["job_lease_seconds"])
GLINT_JOB_ORPHAN_GRACE = int(GLINT["job_orphan_grace"])
GLINT_CACHE_DIR = Path(str(GLINT["cache_dir"]) or DATA_DIR / "cache").expanduser()
GLINT_CACHE_QUOTA_BYTES = int(GLINT["cache_quota_bytes"])
GLINT_UPLOAD_MAX_BYTES = int(GLINT["upload_max_bytes"])
GLINT_UPLOAD_RESUME_HOURS = float(GLINT["upload_resume_hours"])
GLINT_FETCH_ALLOW_CIDRS = config.fetch_allow_cidrs(GLINT["fetch_allow_cidrs"])
GLINT_CLOUD_PULL = bool(GLINT["cloud_pull"])
GLINT_CLOUD_PULL_HOSTS = config.cloud_pull_hosts(GLINT["cloud_pull_hosts"])
GLINT_CLOUD_ALLOW_CIDRS = config.cloud_allow_cidrs(GLINT["cloud_allow_cidrs"])
GLINT_CLOUD_DEV_LOOPBACK = config.cloud_dev_loopback(GLINT["cloud_dev_loopback"])

GLINT_API_RATE_LIMIT = config.api_rate_limit(str(GLINT["api_rate_limit"]))

# What processes must count together (the per-person API limit): in Redis when a broker is
# configured, so every machine of a cluster shares it; otherwise in files under the data
# directory, shared by every worker of one `glint serve` and by other processes on this machine.
if GLINT_BROKER_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": GLINT_BROKER_URL,
            "KEY_PREFIX": "glint",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "shared-counts"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
GLINT_TOKEN_ISSUERS = config.token_issuers(GLINT["token_issuers"])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "glint.api.authentication.CertificateAuthentication",
        "glint.api.authentication.BearerTokenAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["glint.api.throttling.PerPersonRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["glint.drf.permissions.IsRegisteredUser"],
    "EXCEPTION_HANDLER": "glint.drf.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "glint.drf.pagination.Pagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Glint API",
    "DESCRIPTION": "Keep VM images in step across cloud projects.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "OAS_VERSION": "3.1.0",  # for the mutualTLS security scheme (certificate sign-in)
}

if GLINT["log_format"] not in ("plain", "json"):
    raise config.ConfigError(f"GLINT_LOG_FORMAT is {GLINT['log_format']!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {"()": "glint.logs.JsonFormatter"},
    },
    "filters": {"request_id": {"()": "glint.web.request_context.RequestIdLogFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": GLINT["log_format"],
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": GLINT["log_level"]},
}
