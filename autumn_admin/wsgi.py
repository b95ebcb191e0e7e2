"""The WSGI application: the hot API calls (autumn_admin/api/hot.py) answered before Django's request
cycle — no middleware (session, CSRF, messages, auth), URL resolution or template machinery — and every
other request, and every hot request the lean path does not serve, by Django. docs/architecture.md,
"The lean path", says why it is here and what it measured."""

import io
import logging
import os

from django.core.wsgi import get_wsgi_application
from django.http.request import split_domain_port, validate_host

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autumn_admin.settings")

django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

from autumn_admin.api import hot  # noqa: E402  (after Django is set up)
from autumn_admin.api.errors import INTERNAL_ERROR_MESSAGE, error_body  # noqa: E402

log = logging.getLogger("autumn_admin.api")


def close_old_connections() -> None:
    """What Django does at the start and end of each request (CONN_MAX_AGE, health checks), except to a
    connection inside a transaction (only a test's: a request never leaves one open)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def _headers(environ) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _secure(environ) -> bool:
    """Is the request HTTPS, as Django's `request.is_secure()` reads it (behind a proxy, its header)?"""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = environ.get(header)
        if forwarded is not None:
            return forwarded.split(",")[0].strip() == value
    return environ.get("wsgi.url_scheme") == "https"


def _host_allowed(environ) -> bool:
    """Would Django accept the request's host (`ALLOWED_HOSTS`, as `request.get_host()` checks it)?"""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _lean_may_answer(environ) -> bool:
    """Only a POST to a hot path, with a body within the request limit (read from its header, before any
    of it is read), over HTTPS where the settings require it, to an allowed host: anything else is
    Django's, which redirects, refuses or answers it as for any other URL."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in hot.PATHS:
        return False
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    if hot.too_big(length):
        return False
    if settings.SECURE_SSL_REDIRECT and not _secure(environ):
        return False
    return _host_allowed(environ)


def _security_headers(environ) -> list[tuple[str, str]]:
    """The headers Django's SecurityMiddleware adds to every answer."""
    headers = [("X-Content-Type-Options", "nosniff")] if settings.SECURE_CONTENT_TYPE_NOSNIFF else []
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_HSTS_SECONDS and _secure(environ):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        hsts += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
        hsts += "; preload" if settings.SECURE_HSTS_PRELOAD else ""
        headers.append(("Strict-Transport-Security", hsts))
    return headers


def application(environ, start_response):
    if not _lean_may_answer(environ):
        return django_application(environ, start_response)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # Django reads it again when it answers
    headers = _headers(environ)
    close_old_connections()  # as Django does at the start and end of each request (CONN_MAX_AGE, health)
    try:
        done = hot.answer(environ["PATH_INFO"][len("/v1/") :], headers, body)
    except Exception:
        # Never handed on to Django: a track may have committed before the failure (its answer, or the
        # COMMIT's reply, lost), and running the operation again would record it twice. Autumn's 500.
        log.exception("The lean path failed on %s", environ["PATH_INFO"])
        done = 500, error_body(INTERNAL_ERROR_MESSAGE, "internal_error", hot.key_env(headers))
    finally:
        close_old_connections()
    if done is None:
        return django_application(environ, start_response)
    status, payload = done
    reason = "OK" if status == 200 else "Internal Server Error"
    start_response(
        f"{status} {reason}",
        [("Content-Type", hot.CONTENT_TYPE), ("Content-Length", str(len(payload))), *_security_headers(environ)],
    )
    return [payload]
