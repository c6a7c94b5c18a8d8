"""Watchpost settings. Every knob is an environment variable (see README "Configuration")."""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from dashboard import embedded_db
from dashboard.env import env_bool, env_database_url, env_int, env_list, env_str, env_timezone

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WATCHPOST_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key
    # Generated once and kept, so sessions survive restarts without anyone
    # having to invent a key for a local install.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
TESTING = "pytest" in sys.modules or env_bool("WATCHPOST_TESTING", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "django_htmx",
    "django_q",
    "dashboard",
    "monitoring",
    "alerting",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.security.LoginRequiredMiddleware",  # public views never load the session
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.nav",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
_external = env_database_url("DATABASE_URL")
if _external is not None:
    _db = _external
    _db["ENGINE"] = "django.db.backends.postgresql"
else:
    _db = embedded_db.ensure_database(embedded_db.pgdata_dir(BASE_DIR), env_str("WATCHPOST_DB_NAME", "watchpost"))

# django-q2's database broker reconnects on every poll without persistent
# connections (~40 tasks/s vs 260-330 tasks/s measured); keep them open.
_db["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, min_value=0)
_db["CONN_HEALTH_CHECKS"] = True
_db.setdefault("OPTIONS", {})
# Each concurrent test run (helpers, CI) may pick its own test database name.
_db["TEST"] = {"NAME": env_str("WATCHPOST_TEST_DB_NAME", f"test_{_db['NAME']}")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- I18N / time ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_timezone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if (DEBUG or TESTING)
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Files written by the app -------------------------------------------------
EXPORT_DIR = Path(env_str("EXPORT_DIR", str(VAR_DIR / "exports")))
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
UPLOAD_DIR = Path(env_str("UPLOAD_DIR", str(VAR_DIR / "uploads")))
MEDIA_ROOT = VAR_DIR / "media"

# --- Background work (django-q2) ------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Tests run django-q2 tasks inline unless told otherwise.
WATCHPOST_TASKS_SYNC = env_bool("WATCHPOST_TASKS_SYNC", TESTING)
Q_CLUSTER = {
    "name": "watchpost",
    "workers": env_int("Q_WORKERS", 3, min_value=1, max_value=64),
    "timeout": env_int("Q_TIMEOUT", 1800, min_value=10),
    # django-q2 requires retry > timeout or a long task is handed out twice.
    "retry": env_int("Q_TIMEOUT", 1800, min_value=10) + 120,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.2,
    "sync": WATCHPOST_TASKS_SYNC,
    "label": "Django Q",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Monitoring ---------------------------------------------------------------
GPU_SAMPLE_INTERVAL = env_int("GPU_SAMPLE_INTERVAL", 5, min_value=1, max_value=60)
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])

# --- Retention (days) -----------------------------------------------------------
RETENTION_GPU_STATS_DAYS = env_int("RETENTION_GPU_STATS_DAYS", 30, min_value=1)
RETENTION_LOGS_DAYS = env_int("RETENTION_LOGS_DAYS", 7, min_value=1)
RETENTION_JOBS_DAYS = env_int("RETENTION_JOBS_DAYS", 30, min_value=1)
EXPORT_RETENTION_DAYS = env_int("EXPORT_RETENTION_DAYS", 7, min_value=1)
RESTORE_MAX_UPLOAD_BYTES = env_int("RESTORE_MAX_UPLOAD_BYTES", 1024**3, min_value=1024)

# --- Mail -------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, min_value=1, max_value=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "watchpost@localhost")

# Seed index names such as idx_job_transitions_job_id_transitioned_at are longer
# than Django's portable 30-character limit; PostgreSQL allows 63.
SILENCED_SYSTEM_CHECKS = ["models.E034"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Security hardening (issue 7) ---------------------------------------------------
# Headers that are right for every deployment, HTTP or HTTPS.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A local install answers plain HTTP on 127.0.0.1; secure cookies or an SSL redirect
# would make it unusable, so HTTPS hardening is an explicit opt-in (HTTPS=1) and never
# applies to DEBUG or test runs.
HTTPS = env_bool("HTTPS", False) and not DEBUG and not TESTING
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, min_value=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a one-way submission to browser vendors: opt in with SECURE_HSTS_PRELOAD=1.
        SILENCED_SYSTEM_CHECKS.append("security.W021")
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        # Only when a TLS-terminating proxy always sets (and strips client-sent) X-Forwarded-Proto.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# PostgreSQL text cannot hold NUL: refuse "%00" in any parameter with a 400 before a view filters on it.
MIDDLEWARE += ["dashboard.security.RejectNulBytesMiddleware"]

# Content-Security-Policy (django-csp): no inline or eval'd script anywhere; inline
# styles stay allowed because progress bars set their width with a style attribute.
INSTALLED_APPS += ["csp"]
MIDDLEWARE += ["csp.middleware.CSPMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

# Login throttling (django-axes): lock a user name + client IP pair after
# LOGIN_FAILURE_LIMIT failures for LOGIN_COOLOFF_MINUTES; a success resets the count.
# Failed logins are audited by monitoring's user_login_failed receiver (also during a lockout).
INSTALLED_APPS += ["axes"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesBackend", "django.contrib.auth.backends.ModelBackend"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # must stay last
# Off under pytest so tests may use client.login(); the lockout tests switch it on.
AXES_ENABLED = not TESTING
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, min_value=1, max_value=1000)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, min_value=1, max_value=7 * 24 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "dashboard.security.client_ip"
# Successful logins are already in audit_logs; axes keeps only what it needs to lock out.
AXES_DISABLE_ACCESS_LOG = True

# --- Alerting (issue 5) -------------------------------------------------------------
# Webhook attempts time out after this many seconds; each alert × channel gets up to
# ALERT_DELIVERY_MAX_ATTEMPTS tracked attempts with exponential backoff and jitter.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, min_value=1, max_value=120)
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 5, min_value=1, max_value=20)
# Baselines: EWMA weight of the newest hour (percent) and the samples a slot needs
# before events get an anomaly score.
BASELINE_ALPHA = env_int("BASELINE_ALPHA_PERCENT", 10, min_value=1, max_value=100) / 100
BASELINE_MIN_SAMPLES = env_int("BASELINE_MIN_SAMPLES", 7, min_value=1, max_value=10000)

# --- Database log handler (monitoring, issue 4) ------------------------------------
# Our own loggers' records also go to the `logs` table (Log explorer), written by a
# background thread so logging never waits on the database. Off under pytest so
# other tests are not slowed; tests of the handler build their own instance.
LOG_TO_DATABASE = env_bool("LOG_TO_DATABASE", not TESTING)
LOGGING["handlers"]["database"] = {
    "()": "monitoring.logging.DatabaseLogHandler",
    "level": env_str("DB_LOG_LEVEL", "INFO").upper(),
    "enabled": LOG_TO_DATABASE,
}
for _logger_name in ("dashboard", "monitoring", "alerting", "jobs"):
    LOGGING["loggers"].setdefault(_logger_name, {}).setdefault("handlers", []).append("database")
# GPU sampler (monitoring): the host name its rows and its advisory lock use (default:
# the machine's host name; set it where containers get random ones).
# WATCHPOST_FAKE_NVML=N samples N fake GPUs (demo, e2e, GPU-less machines); 0 acts as
# a machine without the NVIDIA driver. Read by monitoring.services.sampler.nvml_module().
GPU_SAMPLER_HOST = env_str("GPU_SAMPLER_HOST", "")

# --- Backup / restore limits (jobs, issue 3) ---------------------------------------------
# A restore archive may expand to at most this many bytes in total, and a member
# bigger than 1 MiB may not expand more than RATIO times its compressed size
# (real CSV backups stay far below; zip bombs run at ~1000x).
RESTORE_MAX_UNCOMPRESSED_BYTES = env_int("RESTORE_MAX_UNCOMPRESSED_BYTES", 16 * 1024**3, min_value=1024)
RESTORE_MAX_COMPRESSION_RATIO = env_int("RESTORE_MAX_COMPRESSION_RATIO", 250, min_value=2)
# Rows deleted per statement by the retention job (short transactions, no long locks).
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 5000, min_value=100)
# The rule engine PREPAREs its few hot statements once per database session; turn off
# behind a transaction-pooling proxy (e.g. PgBouncer in transaction mode).
ALERTING_PREPARED_STATEMENTS = env_bool("ALERTING_PREPARED_STATEMENTS", True)
