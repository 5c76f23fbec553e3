"""RemoteBank settings, read from the environment (see .env.example).

A fresh checkout runs with no configuration (development mode: SQLite, embedded Redis) and
generates its own secrets into the var directory; with DEBUG off it refuses to start without
explicit ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from remotebank import queues
from remotebank.env import env_bool, env_float, env_int, env_list, env_secret, env_str
from remotebank.local_secrets import local_secret
from remotebank.origins import origin_of
from remotebank.redis import reconnecting

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("REMOTEBANK_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite, embedded Redis and logs of a fresh checkout

DEBUG = env_bool("DEBUG", True)


# The development secret earlier versions of this file held: public, so refused anywhere.
PUBLISHED_SECRETS = frozenset({"dev-only-insecure-secret-key-change-me"})


def _secret(name: str) -> str:
    """NAME or the file NAME_FILE names; else, in development, the checkout's own generated
    value (remotebank.local_secrets, under VAR_DIR/secrets); never a value from this file."""
    explicit = env_secret(name, "")
    if explicit in PUBLISHED_SECRETS:
        raise ImproperlyConfigured(f"{name} must be set: that value is published, not secret.")
    if explicit:
        return explicit
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set when DEBUG is off.")
    return local_secret(VAR_DIR / "secrets", name)


SECRET_KEY = _secret("SECRET_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The demo mobile-banking page (opens sessions for demo customers): development only.
DEMO_MODE = env_bool("DEMO_MODE", DEBUG)
# Public base URL for links handed to mobile banking (entry tickets). By default the port
# Daphne listens on (PORT, as `make run` uses it), so a link works on a fresh checkout.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL") or f"http://127.0.0.1:{env_int('PORT', 8000)}"
# The origins (scheme://host:port) the bank's pages are served from: a cookie-authenticated
# WebSocket must come from one of them (apps.calls.origins) and the CSP's connect-src names
# them. Default: PUBLIC_BASE_URL's origin and CSRF_TRUSTED_ORIGINS.
PUBLIC_ORIGINS = [
    o
    for o in (
        origin_of(u) for u in env_list("PUBLIC_ORIGINS", [PUBLIC_BASE_URL, *CSRF_TRUSTED_ORIGINS])
    )
    if o is not None
]
# Also accept a socket from its own origin (the scheme it came on, the Host it reached, which
# ALLOWED_HOSTS names): development servers on any port. Off in production unless set.
WS_SAME_ORIGIN = env_bool("WS_SAME_ORIGIN", DEBUG)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_rq",
    "apps.security",
    "apps.audit",
    "apps.accounts",
    "apps.banking",
    "apps.calls",
    "apps.recordings",
    "apps.qc",
    "apps.monitoring",
    # REST API v1 (apps/api): Django REST framework, its OpenAPI 3.1 schema, and the schema
    # viewers' files served from this server (no CDN).
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "remotebank.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "remotebank.urls"
ASGI_APPLICATION = "remotebank.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or SQLite under var/ for the embedded run.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'remotebank.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout so Daphne, the router and RQ workers can share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# A file (not memory) for the SQLite test database, so end-to-end tests' Daphne and worker
# subprocesses see what the test wrote.
_test_db_default = (
    str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else ""
)
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", _test_db_default) or None}
# DATABASE_OWNER_URL: the same database, as the role that owns its tables. `migrate` and `flush`
# connect as it and grant DATABASE_URL's role only row rights (remotebank.db_roles); unset, one
# role does everything.
DATABASE_OWNER: dict[str, Any] | None = None
DATABASE_APPLICATION_ROLE = DATABASES["default"].get("USER") or ""
if _owner_url := env_str("DATABASE_OWNER_URL"):
    DATABASE_OWNER = dict(dj_database_url.parse(_owner_url))
    if DATABASE_OWNER["NAME"] != DATABASES["default"]["NAME"]:
        raise ImproperlyConfigured("DATABASE_OWNER_URL must name DATABASE_URL's database")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: REDIS_URL, or the embedded server that `make run` / `make test` start.
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6390)
REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
REDIS_EMBEDDED = not env_str("REDIS_URL")

CHANNEL_LAYERS = {
    "default": {
        # Pub/sub layer: p99 1.7 ms vs 4.1 ms for the list-based layer, measured on this stack.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # redis-py 8 closes idle sockets after 5 s unless socket_timeout is None.
            # Pooled sockets a restarted Redis closed are retried on fresh ones (reconnecting).
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, **reconnecting()}],
            "prefix": env_str("CHANNEL_PREFIX", "rb"),
        },
    }
}

RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (
        (queues.MEDIA, env_int("MEDIA_JOB_TIMEOUT", 4 * 3600)),
        (queues.COMPOSE, env_int("COMPOSE_JOB_TIMEOUT", 3600)),
        (queues.QC, env_int("QC_JOB_TIMEOUT", 3600)),
        (queues.WEBHOOKS, env_int("WEBHOOK_JOB_TIMEOUT", 600)),
        (queues.BANKING, env_int("BANKING_JOB_TIMEOUT", 300)),
        (queues.DOWNLOADS, env_int("DOWNLOAD_JOB_TIMEOUT", 1800)),
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agent-workstation"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS: list[Path | tuple[str, Path]] = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# In development static files come straight from the finders; production collects them.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Sessions: staff sessions expire when idle; cookies never readable from scripts.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# X-Forwarded-Proto is believed only behind a TLS-terminating proxy that sets it (and strips a
# client's own); anywhere else a client could claim https with it.
TRUSTED_PROXY = env_bool("TRUSTED_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY else None

# WebRTC: STUN/TURN handed to clients at join.
STUN_URLS = env_list("STUN_URLS", [])
TURN_URLS = env_list("TURN_URLS", [])
TURN_USERNAME = env_str("TURN_USERNAME", "")
TURN_PASSWORD = env_secret("TURN_PASSWORD", "")

# Storage roots.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
RECORDINGS_ROOT = Path(env_str("RECORDINGS_ROOT", str(VAR_DIR / "recordings")))
EVIDENCE_ROOT = Path(env_str("EVIDENCE_ROOT", str(VAR_DIR / "evidence")))

# Routing and queue.
ENTRY_TICKET_TTL_SECONDS = env_int("ENTRY_TICKET_TTL_SECONDS", 300)
API_SIGNATURE_MAX_SKEW_SECONDS = env_int("API_SIGNATURE_MAX_SKEW_SECONDS", 300)
RING_TIMEOUT_SECONDS = env_int("RING_TIMEOUT_SECONDS", 20)
AFTER_CALL_WORK_SECONDS = env_int("AFTER_CALL_WORK_SECONDS", 30)
DEFAULT_HANDLE_SECONDS = env_int("DEFAULT_HANDLE_SECONDS", 180)
ROUTER_TICK_SECONDS = env_float("ROUTER_TICK_SECONDS", 0.5)
# An agent's open sockets (workstation pages, SDK clients) beat this often; an agent none of
# whose sockets beat for the grace (long enough for a page reload) leaves routing (offline).
WORKSTATION_BEAT_SECONDS = env_float("WORKSTATION_BEAT_SECONDS", 5.0)
WORKSTATION_GRACE_SECONDS = env_float("WORKSTATION_GRACE_SECONDS", 15.0)
# A connected call whose customer (or whose agent) has had no socket this long ends as lost.
CALL_LOST_SECONDS = env_int("CALL_LOST_SECONDS", 60)

# Signaling limits.
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 64 * 1024)
# Daphne's own message limit (remotebank.serve): above WS_MAX_FRAME_BYTES, so a frame between
# the two is answered with frame_too_large instead of a closed socket.
WS_TRANSPORT_MAX_BYTES = env_int("WS_TRANSPORT_MAX_BYTES", 16 * 1024 * 1024)
if WS_TRANSPORT_MAX_BYTES <= WS_MAX_FRAME_BYTES:
    raise ImproperlyConfigured("WS_TRANSPORT_MAX_BYTES must be larger than WS_MAX_FRAME_BYTES")
CHAT_MAX_CHARS = env_int("CHAT_MAX_CHARS", 1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
    },
}

# Cryptography (apps/security): "gm" (SM2/SM3/SM4, default) or "intl" (RSA/SHA-256/AES).
CRYPTO_SUITE = env_str("CRYPTO_SUITE", "gm")
# Master key (hex, 32 bytes) for the key hierarchy; from a file in production (MASTER_KEY_FILE).
# A development checkout generates its own (_secret).
MASTER_KEY = _secret("MASTER_KEY")
KMS_BACKEND = env_str("KMS_BACKEND", "apps.security.kms.LocalMasterKey")
# Secret from which API clients' HMAC secrets are derived (see apps.accounts.signing).
API_CLIENT_MASTER_SECRET = _secret("API_CLIENT_MASTER_SECRET")
CUSTOMER_ABANDON_SECONDS = env_int("CUSTOMER_ABANDON_SECONDS", 60)

# REST API v1 (apps/api, docs/api.md): signed requests, per-client scopes and rate limits, one
# error shape, every access audited.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.auth.SignedRequestAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.HasScopes"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RemoteBank API",
    "DESCRIPTION": "REST API v1 for the bank's systems (docs/api.md).",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The QC verdict and the reviewers' final verdict are one choice set.
    "ENUM_NAME_OVERRIDES": {"VerdictEnum": "apps.qc.models.Verdict"},
}
# Requests per minute of a client without its own limit (apps.api.models.ClientPolicy).
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 16 * 1024)
# Webhooks: one HTTP attempt's limit; the retry schedule is in apps/api/delivery.py.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0)
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 1.0)
# Seconds before each retry; empty: the default schedule over 31.9 h (a deploy check refuses
# one under 24 h). Tests shorten it.
WEBHOOK_RETRY_SCHEDULE = [float(s) for s in env_list("WEBHOOK_RETRY_SCHEDULE", [])]
# Webhook endpoints must be https unless this is on (local receivers, tests, the demo).
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", DEBUG)
# The seat widget's token: how long the CRM's page may use it to open (and reopen) the socket.
SEAT_TOKEN_TTL_SECONDS = env_int("SEAT_TOKEN_TTL_SECONDS", 600)

# Tests only: a fast password hasher so fixtures do not spend seconds on PBKDF2.
if DEBUG and env_bool("TEST_FAST_PASSWORD_HASHER"):
    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]

# Media: the job's heartbeat lives in Redis; a call whose job misses it is taken over.
MEDIA_HEARTBEAT_SECONDS = env_float("MEDIA_HEARTBEAT_SECONDS", 1.0)
MEDIA_HEARTBEAT_TTL_SECONDS = env_float("MEDIA_HEARTBEAT_TTL_SECONDS", 4.0)
# ... and in the database too (Call.media_beat_at), so losing Redis's key alone is not a death;
# fresh for MEDIA_HEARTBEAT_TTL_SECONDS, so this must be well under it.
MEDIA_DURABLE_BEAT_SECONDS = env_float("MEDIA_DURABLE_BEAT_SECONDS", 1.5)
# A new job has this long to come up before it is considered lost too.
MEDIA_START_GRACE_SECONDS = env_float("MEDIA_START_GRACE_SECONDS", 15.0)
# Calls one media worker process carries at once (measured on this stack: ~25-30 per core).
MEDIA_WORKER_CAPACITY = env_int("MEDIA_WORKER_CAPACITY", 25)
MEDIA_STATS_SECONDS = env_float("MEDIA_STATS_SECONDS", 3.0)
# Nothing at all (RTP or RTCP) from a participant for this long is a media loss on the timeline
# even while ICE still says connected (ICE gives up only after ~30 s of failed consent checks).
MEDIA_SILENCE_SECONDS = env_float("MEDIA_SILENCE_SECONDS", 6.0)
# Monitoring (apps/monitoring): store each leg's quality sample (off only to measure its cost),
# the service-level threshold (answered within it), a protected /metrics (bearer token; staff
# supervisors may also read it) and how often the wallboard is pushed while nothing changes.
MONITORING_QUALITY_SAMPLES = env_bool("MONITORING_QUALITY_SAMPLES", True)
MONITORING_SERVICE_LEVEL_SECONDS = env_int("MONITORING_SERVICE_LEVEL_SECONDS", 20)
MONITORING_METRICS_TOKEN = env_secret("MONITORING_METRICS_TOKEN", "")
MONITORING_WALLBOARD_SECONDS = env_float("MONITORING_WALLBOARD_SECONDS", 5.0)
# Caps handed to the media job and clients.
MEDIA_VIDEO_CODEC = env_str("MEDIA_VIDEO_CODEC", "VP8")
MEDIA_MAX_WIDTH = env_int("MEDIA_MAX_WIDTH", 640)
MEDIA_MAX_HEIGHT = env_int("MEDIA_MAX_HEIGHT", 480)
MEDIA_MAX_FPS = env_int("MEDIA_MAX_FPS", 25)
MEDIA_MIN_FPS = env_int("MEDIA_MIN_FPS", 15)
MEDIA_MAX_BITRATE_KBPS = env_int("MEDIA_MAX_BITRATE_KBPS", 800)

# --- Staff authentication and access control (apps.accounts; docs/security.md) ---------------
# Lockout: LOGIN_FAILURE_LIMIT failed login steps (password or second factor) for one username
# within LOGIN_FAILURE_WINDOW_SECONDS lock it for LOGIN_LOCKOUT_SECONDS; counted in the
# database, so every process sees the same count. LOGIN_LOCKOUT_PER_IP counts (and locks) per
# username and client address instead (behind a proxy, REMOTE_ADDR must be the client's).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
LOGIN_LOCKOUT_PER_IP = env_bool("LOGIN_LOCKOUT_PER_IP", False)
# TOTP second factor (RFC 6238): optional per user; required for every staff login when true.
STAFF_TOTP_REQUIRED = env_bool("STAFF_TOTP_REQUIRED", False)
STAFF_TOTP_ISSUER = env_str("STAFF_TOTP_ISSUER", "RemoteBank")
# How long the second login step may wait after the password step.
STAFF_TOTP_PENDING_SECONDS = env_int("STAFF_TOTP_PENDING_SECONDS", 300)
# --- end of staff authentication -------------------------------------------------------------

# Evidence chain (apps/audit): SM2 key signing checkpoints (hex private key; AUDIT_SIGNING_KEY_FILE
# accepted). A development checkout generates its own (_secret).
AUDIT_SIGNING_KEY = _secret("AUDIT_SIGNING_KEY")
# Earlier public keys (hex) whose checkpoints still verify after a key rotation.
AUDIT_TRUSTED_PUBLIC_KEYS = env_list("AUDIT_TRUSTED_PUBLIC_KEYS", [])
AUDIT_CHECKPOINT_EVERY = env_int("AUDIT_CHECKPOINT_EVERY", 1000)
AUDIT_CHECKPOINT_SECONDS = env_int("AUDIT_CHECKPOINT_SECONDS", 300)

# --- Recordings (apps.recordings, media_worker/recorder.py, medialib/composition.py) --------
# docs/recording.md. Raw per-track segments and composed files go through one storage class;
# RECORDINGS_ROOT (above) is its root. In a multi-node deployment it must be shared (NFS) or
# replaced by an object-storage class with the same interface.
RECORDINGS_STORAGE = env_str("RECORDINGS_STORAGE", "apps.recordings.storage.LocalStorage")
# Encrypt every recording file (SM4-GCM under "gm") with a data key of its recording.
RECORDINGS_ENCRYPT = env_bool("RECORDINGS_ENCRYPT", True)
# Raw segments are cut at the first video keyframe after this many seconds (one is requested).
# A minute: every requested keyframe is a burst on the publisher's and subscribers' links,
# and a clean link should see about one a minute (docs/media.md "Congestion control").
RECORDINGS_SEGMENT_SECONDS = env_float("RECORDINGS_SEGMENT_SECONDS", 60.0)
# Composition: H.264 preset and quality, a CJK font for the burned-in text (empty: found with
# fontconfig, fonts-noto-cjk), and how long a job waits for the media job to finish writing.
RECORDINGS_X264_PRESET = env_str("RECORDINGS_X264_PRESET", "veryfast")
RECORDINGS_X264_CRF = env_int("RECORDINGS_X264_CRF", 23)
RECORDINGS_FONT = env_str("RECORDINGS_FONT", "")
RECORDINGS_CAPTURE_WAIT_SECONDS = env_float("RECORDINGS_CAPTURE_WAIT_SECONDS", 30.0)
RECORDINGS_COMPOSE_RETRIES = env_int("RECORDINGS_COMPOSE_RETRIES", 2)
# Downloads of recordings: a second person (QC, supervisor, auditor) approves each one when
# on; the watermarked copy is kept this many hours, then purge_recordings removes it.
RECORDINGS_DOWNLOAD_APPROVAL = env_bool("RECORDINGS_DOWNLOAD_APPROVAL", False)
RECORDINGS_DOWNLOAD_TTL_HOURS = env_int("RECORDINGS_DOWNLOAD_TTL_HOURS", 24)
# Retention of business types without a RetentionRule: years, or "forever" (the default).
RECORDINGS_RETENTION_DEFAULT_YEARS = env_str("RECORDINGS_RETENTION_DEFAULT_YEARS", "forever")
# --- end of recordings -----------------------------------------------------------------------

# --- quality inspection (apps.qc, medialib/qc/, media_worker/vision.py) -----------------------
QC_RETRIES = env_int("QC_RETRIES", 2)  # immediate retries of a failed QC job
# Thresholds of medialib.qc.inputs.QcOptions (seconds unless named otherwise), overridable here.
QC_OPTIONS = {
    "sample_fps": env_float("QC_SAMPLE_FPS", 4.0),
    "gap_seconds": env_float("QC_GAP_SECONDS", 2.0),
    "silence_seconds": env_float("QC_SILENCE_SECONDS", 3.0),
    "min_face_share": env_float("QC_MIN_FACE_SHARE", 0.8),
}
# A participant's media must be recorded from when it connected, at most this long after they
# joined (the page's "正在连接视频服务…": set-up is not a gap unless it takes longer).
QC_MEDIA_SETUP_SECONDS = env_float("QC_MEDIA_SETUP_SECONDS", 15.0)
# Live compliance: the media job samples each customer camera this many frames a second.
QC_LIVE_VISION = env_bool("QC_LIVE_VISION", True)
QC_LIVE_SAMPLE_FPS = env_float("QC_LIVE_SAMPLE_FPS", 2.5)
# Human review: the share of passed recordings sampled into the reviewers' queue, and whether a
# second, different reviewer must confirm every review.
QC_REVIEW_SAMPLE_RATE = env_float("QC_REVIEW_SAMPLE_RATE", 0.1)
QC_SECOND_REVIEW = env_bool("QC_SECOND_REVIEW", False)
# Supplementary recordings (补录): the largest upload accepted, and the share of the call the
# file must cover to count as a recording of it.
QC_SUPPLEMENT_MAX_BYTES = env_int("QC_SUPPLEMENT_MAX_BYTES", 512 * 1024 * 1024)
QC_SUPPLEMENT_MIN_COVERAGE = env_float("QC_SUPPLEMENT_MIN_COVERAGE", 0.8)
# Any HTTP request body, refused with 413 while it arrives (remotebank/body_limit.py): the
# largest upload (a 补录 file) plus room for its multipart form.
HTTP_MAX_BODY_BYTES = env_int("HTTP_MAX_BODY_BYTES", QC_SUPPLEMENT_MAX_BYTES + 1024 * 1024)
# --- end of quality inspection ---------------------------------------------------------------

# --- browser payload encryption (apps.security.browser) -----------------------------------------
# sm-crypto's browser bundles, installed from package.json by `make install` (npm ci), served as
# /static/vendor/sm-crypto/{sm2,sm3,sm4}.js.
STATICFILES_DIRS += [("vendor/sm-crypto", BASE_DIR / "node_modules" / "sm-crypto" / "dist")]
# The wallboard's day charts (apps/monitoring): Chart.js from npm, served here, never a CDN.
STATICFILES_DIRS += [("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]
# The H5 SDK, built from sdk/js by `make install` (npm run build; never committed):
# /static/sdk/remotebank-h5.js (the customer page runs on it) and its frame-encryption worker.
STATICFILES_DIRS += [("sdk", BASE_DIR / "sdk" / "js" / "dist")]
# "optional": plain chat text is still accepted; "required": refused with encryption_required.
PAYLOAD_ENCRYPTION = env_str("PAYLOAD_ENCRYPTION", "optional")
# Frame-level media encryption on top of DTLS-SRTP (apps/security/frames.py, docs/security.md):
# "off"; "preferred" (pages that support encoded transforms encrypt, others such as SDK
# clients stay on DTLS-SRTP only); "required" (a media offer without it is refused).
MEDIA_FRAME_ENCRYPTION = env_str("MEDIA_FRAME_ENCRYPTION", "preferred")
if MEDIA_FRAME_ENCRYPTION not in ("off", "preferred", "required"):
    raise ImproperlyConfigured("MEDIA_FRAME_ENCRYPTION must be off, preferred or required")
# --- end of browser payload encryption ----------------------------------------------------------

# --- banking transactions (apps.banking, docs/banking.md) ---------------------------------------
# The core-banking gateway and the online ID check (公安联网核查): dotted paths; the defaults are
# the SANDBOX implementations on their own tables, for development and tests only.
BANKING_CORE_GATEWAY = env_str(
    "BANKING_CORE_GATEWAY", "apps.banking.gateway.sandbox.SandboxCoreGateway"
)
BANKING_ONLINE_ID_CHECK = env_str(
    "BANKING_ONLINE_ID_CHECK", "apps.banking.gateway.online_id.SandboxOnlineIdCheck"
)
# Identity verification needs a passing ID-card OCR frame from the live video.
BANKING_REQUIRE_ID_OCR = env_bool("BANKING_REQUIRE_ID_OCR", False)
# CPU threads of the ID-card OCR (it runs in the media worker, next to live calls).
BANKING_OCR_THREADS = env_int("BANKING_OCR_THREADS", 1)
# Face comparison, ID-card photo vs live face (apps/banking/face.py): the largest Euclidean
# distance of dlib's 128-d embeddings taken as the same person (measured: benchmarks/face_match.py).
BANKING_FACE_MATCH_THRESHOLD = env_float("BANKING_FACE_MATCH_THRESHOLD", 0.6)
# Identity verification needs a face comparison that matched (not only the agent's confirmation).
BANKING_REQUIRE_FACE_MATCH = env_bool("BANKING_REQUIRE_FACE_MATCH", False)
# --- end of banking transactions ----------------------------------------------------------------
