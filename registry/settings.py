"""Settings for the registry management service, read from the environment.

Every setting has a safe default for a developer's machine: DEBUG is off, the
database is a SQLite file under ``var/``, and the secret key is generated once
into ``var/secret_key``. Production sets the variables listed in
``.env.example``.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SWR_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False, environ=os.environ) -> bool:
    """Read a boolean environment variable: 1/true/yes/on or 0/false/no/off."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    # No key given: keep one generated key per installation (one node), never in the repository. Several nodes
    # must be given the same DJANGO_SECRET_KEY (README, "Several nodes").
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Workers that start together agree on one key: each writes its own to a file of its own and links it
        # into place, and the first link wins.
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(secrets.token_urlsafe(50))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made the key first: use that one
        finally:
            draft.unlink()
    return path.read_text().strip()


def _registry_token_key(secret_key: str) -> str:
    """The PEM private key that signs the registry's bearer tokens (GET /service/token, spec section 9).

    SWR_REGISTRY_TOKEN_KEY holds the PEM itself, or the path of a PEM file: an EC P-256 key (tokens signed
    ES256) or an RSA key (RS256). Every node of an installation needs the same key. Unset: a P-256 key derived
    from the secret key (HKDF-SHA256 of SECRET_KEY to a private scalar), so that every node and worker that
    shares DJANGO_SECRET_KEY signs and checks with the same key, and nothing is kept on a node's disk.
    """
    value = os.environ.get("SWR_REGISTRY_TOKEN_KEY", "").strip()
    if value.startswith("-----BEGIN"):
        return value
    if not value:
        return _derived_token_key(secret_key)
    try:
        return Path(value).read_text()
    except OSError as error:
        raise ImproperlyConfigured(f"SWR_REGISTRY_TOKEN_KEY: cannot read the key file {value}: {error}") from None


def _derived_token_key(secret_key: str) -> str:
    """An EC P-256 private key (PKCS#8 PEM) that depends on ``secret_key`` alone: HKDF-SHA256 (RFC 5869) of it
    with a label of its own, reduced to a scalar in [1, n - 1] of the curve's order n."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # of P-256 (SEC 2, 2.4.2)
    # 48 bytes (128 bits beyond the order's 256) make the bias of the reduction negligible (FIPS 186-5, A.2.1).
    material = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=b"swr-registry-token-key/es256").derive(
        secret_key.encode()
    )
    scalar = int.from_bytes(material, "big") % (order - 1) + 1
    return (
        ec.derive_private_key(scalar, ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def blob_settings(environ) -> dict:
    """The settings of the blob store, from the environment ``environ`` (the tests give another one).

    SWR_BLOB_STORAGE: ``filesystem`` (the default: a folder, SWR_BLOB_ROOT or var/blobs) or ``s3``: any
    S3-compatible object store through django-storages (boto3), configured by django-storages' own names:
    AWS_STORAGE_BUCKET_NAME (required), AWS_S3_ENDPOINT_URL (empty: AWS), AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY (empty: boto3's own chain, e.g. an instance role), AWS_S3_REGION_NAME,
    AWS_S3_ADDRESSING_STYLE (``path`` or ``virtual``; empty: boto3 chooses).
    SWR_BLOB_REDIRECT (S3 only, on by default there): a blob GET answers 307 to a signed URL of the object
    store, valid SWR_BLOB_REDIRECT_SECONDS (300); SWR_BLOB_REDIRECT_ENDPOINT_URL: the object store's address
    as clients reach it, when it differs from AWS_S3_ENDPOINT_URL (the app nodes' address).

    Returns the settings SWR_BLOB_STORAGE, SWR_BLOB_REDIRECT, SWR_BLOB_REDIRECT_SECONDS,
    SWR_BLOB_REDIRECT_ENDPOINT_URL and ``blobs``, the entry of STORAGES. ImproperlyConfigured on a bad value.
    """
    kind = environ.get("SWR_BLOB_STORAGE", "").strip() or "filesystem"
    if kind not in ("filesystem", "s3"):
        raise ImproperlyConfigured(f"SWR_BLOB_STORAGE must be filesystem or s3, got {kind!r}")
    redirect = env_bool("SWR_BLOB_REDIRECT", kind == "s3", environ)
    if redirect and kind != "s3":
        raise ImproperlyConfigured("SWR_BLOB_REDIRECT needs SWR_BLOB_STORAGE=s3 (a folder has no signed URLs)")
    raw = environ.get("SWR_BLOB_REDIRECT_SECONDS", "").strip() or "300"
    if not raw.isdigit() or not 1 <= int(raw) <= 7 * 24 * 3600:  # SigV4 presigned URLs live at most 7 days
        raise ImproperlyConfigured(f"SWR_BLOB_REDIRECT_SECONDS must be a number of seconds, 1 to 604800, got {raw!r}")
    seconds = int(raw)
    if kind == "filesystem":
        blobs = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": environ.get("SWR_BLOB_ROOT", str(VAR_DIR / "blobs"))},
        }
    else:
        bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "").strip()
        if not bucket:
            raise ImproperlyConfigured("SWR_BLOB_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
        addressing = environ.get("AWS_S3_ADDRESSING_STYLE", "").strip() or None
        if addressing not in (None, "path", "virtual", "auto"):
            raise ImproperlyConfigured(f"AWS_S3_ADDRESSING_STYLE must be path, virtual or auto, got {addressing!r}")
        blobs = {
            # django-storages' S3Storage with one boto3 client per process (swr/distribution/s3.py)
            "BACKEND": "swr.distribution.s3.S3BlobStorage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL", "").strip() or None,
                "access_key": environ.get("AWS_ACCESS_KEY_ID", "").strip() or None,
                "secret_key": environ.get("AWS_SECRET_ACCESS_KEY", "").strip() or None,
                "region_name": environ.get("AWS_S3_REGION_NAME", "").strip() or None,
                "addressing_style": addressing,
                "signature_version": "s3v4",
                "querystring_expire": seconds,
                "file_overwrite": True,  # keys are chosen by the registry (digests, upload ids): same key, same bytes
                # the bucket's own ACL (private): bytes leave through the registry or a signed URL only
                "default_acl": None,
            },
        }
    return {
        "SWR_BLOB_STORAGE": kind,
        "SWR_BLOB_REDIRECT": redirect,
        "SWR_BLOB_REDIRECT_SECONDS": seconds,
        "SWR_BLOB_REDIRECT_ENDPOINT_URL": environ.get("SWR_BLOB_REDIRECT_ENDPOINT_URL", "").strip() or None,
        "blobs": blobs,
    }


SECRET_KEY = _secret_key()
# True when the secret key was generated into var/ (no DJANGO_SECRET_KEY): a key of this node alone, which
# `manage.py check --deploy` warns of (swr/checks.py); several nodes need one DJANGO_SECRET_KEY.
SWR_SECRET_KEY_GENERATED = not os.environ.get("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# Behind a TLS-terminating proxy (production): HTTPS only, secure cookies, HSTS.
# Off by default so that `make run` and `make serve` answer plain HTTP on 127.0.0.1.
if env_bool("DJANGO_SECURE_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Host name of the registry, used to build pull addresses (<host>/<namespace>/<repository>).
# Empty (the default): the host the request was sent to, so that `path` is where the service answers.
SWR_REGISTRY_HOST = os.environ.get("SWR_REGISTRY_HOST", "")
# The same registry as reached from inside the platform's network (SWR's internal_path); empty: SWR_REGISTRY_HOST.
SWR_REGISTRY_INTERNAL_HOST = os.environ.get("SWR_REGISTRY_INTERNAL_HOST", "")
# How long an API token issued by swr_token or the admin stays valid.
SWR_TOKEN_LIFETIME = timedelta(hours=int(os.environ.get("SWR_TOKEN_LIFETIME_HOURS", "24")))
# Quotas of a tenant that has none of its own (editable per tenant in the admin).
SWR_DEFAULT_QUOTAS = {
    "namespace": int(os.environ.get("SWR_NAMESPACE_QUOTA", "100")),
    "repository": int(os.environ.get("SWR_REPOSITORY_QUOTA", "10000")),
}
# The registry (spec section 9). Anonymous pulls of public repositories, off unless asked for.
# Most tenants one repository is shared with (spec section 12).
SWR_MAX_SHARES_PER_REPOSITORY = 500

SWR_ANONYMOUS_PULL = env_bool("SWR_ANONYMOUS_PULL", False)
# Upload sessions untouched for this long are abandoned: their bytes and rows are removed.
SWR_UPLOAD_TTL = timedelta(hours=int(os.environ.get("SWR_UPLOAD_TTL_HOURS", "24")))
# Garbage collection of blobs (swr/distribution/gc.py, manage.py swr_gc): what nothing uses is removed once
# older than the grace period; untagged manifests too when SWR_GC_DELETE_UNTAGGED; every SWR_GC_INTERVAL_MINUTES
# by the django-q2 cluster (manage.py qcluster, over the database; 0: no schedule).
SWR_GC_GRACE = timedelta(minutes=int(os.environ.get("SWR_GC_GRACE_MINUTES", "60")))
SWR_GC_DELETE_UNTAGGED = os.environ.get("SWR_GC_DELETE_UNTAGGED", "false").lower() in ("1", "true", "yes", "on")
SWR_GC_INTERVAL_MINUTES = int(os.environ.get("SWR_GC_INTERVAL_MINUTES", "60"))
Q_CLUSTER = {
    "name": "swr",
    "orm": "default",  # the broker is the database: no other service to run
    "poll": 5,  # seconds between the broker's looks at its queue (one short query)
    "workers": 1,
    "timeout": 3600,
    "retry": 3700,
    "max_attempts": 1,
    "catch_up": False,  # a cluster that was down runs the collector once, not once per missed interval
    "save_limit": 100,
}
# Lifetime of the registry's bearer tokens (GET /service/token): short, they are verified without the database.
SWR_REGISTRY_TOKEN_LIFETIME = timedelta(seconds=int(os.environ.get("SWR_REGISTRY_TOKEN_LIFETIME_SECONDS", "300")))
# The key that signs them (a PEM, or the path of one; derived from SECRET_KEY when unset): _registry_token_key.
SWR_REGISTRY_TOKEN_KEY = _registry_token_key(SECRET_KEY)
# Largest manifest accepted (OCI distribution-spec: registries should accept at least 4 MiB).
SWR_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Key that encrypts the secret keys of AK/SK pairs at rest (derived from the secret key when unset).
SWR_CREDENTIALS_KEY = os.environ.get("SWR_CREDENTIALS_KEY", "")
# How far X-Sdk-Date of a signed request may be from the server's clock.
SWR_SIGNATURE_MAX_SKEW = timedelta(minutes=15)

# Where blob bytes live and how blobs are pulled (blob_settings; the STORAGES entry "blobs" below).
_BLOBS = blob_settings(os.environ)
SWR_BLOB_STORAGE = _BLOBS["SWR_BLOB_STORAGE"]
# A blob GET answers 307 to a signed URL of the object store, valid this many seconds (after the permission check).
SWR_BLOB_REDIRECT = _BLOBS["SWR_BLOB_REDIRECT"]
SWR_BLOB_REDIRECT_SECONDS = _BLOBS["SWR_BLOB_REDIRECT_SECONDS"]
SWR_BLOB_REDIRECT_ENDPOINT_URL = _BLOBS["SWR_BLOB_REDIRECT_ENDPOINT_URL"]

# Largest request body accepted; larger ones are answered 413.
SWR_MAX_BODY_BYTES = 1024 * 1024
# Largest request head accepted (swr.middleware.RequestHeadLimitMiddleware): a longer request line is
# answered 414, a larger header or more headers 431. gunicorn's own limits (gunicorn.conf.py) are higher.
SWR_MAX_REQUEST_LINE_BYTES = 4 * 1024
SWR_MAX_HEADER_BYTES = 8 * 1024
SWR_MAX_HEADERS = 100

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_q",  # the periodic garbage collection (swr/tasks.py), brokered over the database
    "swr",
]

MIDDLEWARE = [
    "swr.middleware.RequestIdMiddleware",
    "swr.middleware.HeadWithoutBodyMiddleware",
    "swr.logs.AccessLogMiddleware",
    "swr.middleware.RequestHeadLimitMiddleware",
    "swr.middleware.BodySizeLimitMiddleware",
    "swr.middleware.ReadBodyFirstMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # swr.browser_middleware's are Django's and whitenoise's middleware of the browser's pages, which the
    # registry's routes go around. CSRF and X-Frame-Options stay Django's own on every route: `check --deploy`
    # looks for them by name, and on the registry's CSRF-exempt JSON answers they cost little. It looks for the
    # session middleware by name too: its warnings about the session cookie's flags then come from the
    # sessions app (security.W010, W013) instead of W011/W012 and W014/W015; they check the same settings.
    "swr.browser_middleware.WhiteNoiseMiddleware",
    "swr.browser_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "swr.browser_middleware.AuthenticationMiddleware",
    "swr.browser_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a lockout of the admin's login form into the 429 answer
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"
ASGI_APPLICATION = "registry.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _prepare_threshold() -> int | None:
    value = os.environ.get("DJANGO_DB_PREPARE_THRESHOLD", "5")
    return int(value) if value else None


def _pool_size() -> int:
    """DJANGO_DB_POOL_SIZE: database connections of one process, shared by its requests; 0 or empty: none.

    gunicorn's gevent workers (gunicorn.conf.py sets 4) run many requests in one
    thread, so no connection can be kept per thread between requests: PostgreSQL
    connections then come from a pool of this size per process (psycopg_pool),
    taken by a request when it first needs one and given back at its end; SQLite
    connections are opened per request. Without it (sync workers, runserver,
    commands, tests), each thread keeps its own connection DJANGO_CONN_MAX_AGE seconds.
    """
    value = os.environ.get("DJANGO_DB_POOL_SIZE", "").strip()
    size = int(value) if value else 0
    if size < 0:
        raise ImproperlyConfigured(f"DJANGO_DB_POOL_SIZE must be 0 or more, got {value!r}")
    return size


def _database() -> dict:
    default_url = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    pool_size = _pool_size()
    connect_timeout = int(os.environ.get("DJANGO_DB_CONNECT_TIMEOUT", "3"))
    config = dj_database_url.parse(
        os.environ.get("DATABASE_URL", default_url),
        conn_max_age=0 if pool_size else int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        # Django checks a connection kept from an earlier request before its first query (SELECT 1) and
        # replaces it if the server went away (a restart, a terminated backend); with a pool, the backend
        # (swr/db/postgresql) checks each connection it takes from the pool without a round trip.
        conn_health_checks=True,
    )
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Fail fast when the database is away: a request answers 503 instead of hanging.
        config.setdefault("OPTIONS", {}).update(
            {
                "connect_timeout": connect_timeout,
                "options": f"-c statement_timeout={int(os.environ.get('DJANGO_DB_STATEMENT_TIMEOUT_MS', '15000'))}",
                # Parameters travel apart from the SQL text, and a statement that a connection
                # runs again and again is parsed and planned once: psycopg prepares it on its
                # fifth run (Django turns this off unless asked, for transaction-pooling proxies;
                # set DJANGO_DB_PREPARE_THRESHOLD to empty behind one that cannot keep them).
                # The few statements of the request paths are the same every time; planning
                # them on each request was most of the database's work for a lookup.
                "server_side_binding": True,
                "prepare_threshold": _prepare_threshold(),
            }
        )
        if pool_size:
            # A request waits up to the connect timeout for a free connection (or for the database), then 503.
            # The pool keeps all its connections open (min_size = max_size): it opens new ones in the
            # background, which under gevent waits while a request keeps the worker busy (a password hash),
            # and requests then waited past the timeout for connections not yet made.
            config["OPTIONS"]["pool"] = {"min_size": pool_size, "max_size": pool_size, "timeout": connect_timeout}
            # Django's backend, whose pool would check each connection it hands out with a query (a round trip
            # per request); this one finds a connection the server closed by its socket (swr/db/postgresql).
            config["ENGINE"], config["CONN_HEALTH_CHECKS"] = "swr.db.postgresql", False
    if config["ENGINE"] == "django.db.backends.sqlite3":
        if config["NAME"] != ":memory:":
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # Writers queue for the lock instead of failing at once, and a
        # transaction takes the write lock when it starts, so two racing
        # creates end in one row and one clean conflict.
        config.setdefault("OPTIONS", {}).update(
            {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
        )
        # Tests that run a real server in another process need a file, not memory.
        config["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    return config


DATABASES = {"default": _database()}

# models.W040: SQLite ignores the INCLUDE columns of the repository listing's covering indexes
# (swr.models.Repository.Meta.indexes). They serve index-only scans on PostgreSQL; on SQLite the
# same indexes still work on their key columns, so the warning that every command printed there
# says nothing to act on. Silenced on SQLite only: on any other engine it would still be news.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "swr.User"

# Password logins (POST /v3/auth/tokens and the admin's login form) are throttled per user name by
# django-axes, counted in the database so that every worker and node sees the same count (spec section 1):
# after SWR_LOGIN_FAILURE_LIMIT failures, each within SWR_LOGIN_LOCKOUT_MINUTES of the one before, every
# attempt answers 429 SVCSTG.SWR.4290001 until SWR_LOGIN_LOCKOUT_MINUTES after the last failure, whether
# the password is right or not. `python manage.py axes_reset_username NAME` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_FAILURE_LIMIT = int(os.environ.get("SWR_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("SWR_LOGIN_LOCKOUT_MINUTES", "15")))
# Attempts during a lockout do not extend it: it ends when the window after the last failure has passed.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "swr.api.auth_views.lockout_response"
# Successful logins are in the audit trail already; failed ones are counted, not kept.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
# Lockout log lines name the user name (an operator resets it with `manage.py axes_reset_username NAME`)
# and the address; passwords are always masked.
AXES_SENSITIVE_PARAMETERS: list[str] = []
# axes.W006 asks for the client address among the lockout parameters; the spec counts per user name only,
# which no change of address or User-Agent escapes.
SILENCED_SYSTEM_CHECKS += ["axes.W006"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Blob bytes of the registry, stored once per content and addressed by digest (swr/distribution/storage.py):
    # a folder or an S3-compatible object store (blob_settings).
    "blobs": _BLOBS["blobs"],
    # Hashed, compressed files once collectstatic has run; until then the plain names (registry/staticfiles.py),
    # which whitenoise serves from the apps' folders: the admin and /docs/ work without collectstatic.
    "staticfiles": {"BACKEND": "registry.staticfiles.ManifestOrPlainStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Bodies are limited to 1 MiB by swr.middleware.BodySizeLimitMiddleware; keep
# Django's own form parsing limit in line with it.
DATA_UPLOAD_MAX_MEMORY_SIZE = SWR_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = SWR_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "swr.api.authentication.TokenAuthentication",
        "swr.api.authentication.SignatureAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "swr.api.parsers.JSONParser",  # DRF's, with bodies nested deeper than 32 levels refused
        "swr.api.parsers.FormParser",  # DRF's, with a JSON body sent as a form refused with a hint
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "swr.api.negotiation.JSONOnlyNegotiation",
    "EXCEPTION_HANDLER": "swr.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

# The admin's messages are kept in the session (the database), not in a cookie: the "Issue an API token" and
# "Issue an AK/SK pair" actions show a secret once, which must not travel in a (signed, unencrypted) cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SPECTACULAR_SETTINGS = {
    "TITLE": "SWR-compatible registry management API",
    "DESCRIPTION": (
        "Management API of image repositories, compatible with Huawei Cloud SWR v2. "
        "Every error answers the SWR error body (error_code, error_msg, errorCode, errorMessage, details)."
    ),
    "VERSION": "2",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # PATCH bodies are described with their required fields (a repository's PATCH needs is_public, section 5).
    "COMPONENT_SPLIT_PATCH": False,
    "ENUM_NAME_OVERRIDES": {},
}

# A request that fails Django's CSRF check answers the SWR error body (the admin keeps its own page).
CSRF_FAILURE_VIEW = "swr.api.errors.csrf_failure"

# Django logs each SuspiciousOperation (an unknown Host header, too many form fields ...) to
# django.security.<its class name> as an ERROR with a stack trace. It is the client's fault,
# answered 400: one WARNING line is enough (swr.logs.ClientFaultFilter).
SUSPICIOUS_OPERATIONS = [
    "DisallowedHost",
    "DisallowedRedirect",
    "DisallowedModelAdminLookup",
    "DisallowedModelAdminToField",
    "InvalidSessionKey",
    "RequestDataTooBig",
    "SuspiciousFileOperation",
    "SuspiciousMultipartForm",
    "SuspiciousOperation",
    "SuspiciousSession",
    "TooManyFieldsSent",
    "TooManyFilesSent",
]

LOG_FORMAT = os.environ.get("DJANGO_LOG_FORMAT", "json")  # json, or plain for reading in a terminal
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "swr.logs.RequestIdLogFilter"},
        "client_fault": {"()": "swr.logs.ClientFaultFilter"},
    },
    "formatters": {
        "json": {"()": "swr.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # runserver's (make run's) own line per request: swr.access writes one for every request already,
        # and the dev server logs 4xx as WARNING. Only its errors are kept (5xx, HTTPS sent to it).
        "django.server": {"level": "ERROR"},
        **{f"django.security.{name}": {"filters": ["client_fault"]} for name in SUSPICIOUS_OPERATIONS},
        # the connection pool (DJANGO_DB_POOL_SIZE) logs every checkout at INFO
        "psycopg.pool": {"level": "WARNING"},
    },
}
