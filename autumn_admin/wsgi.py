"""The WSGI application: the hot API calls (autumn_admin/api/hot.py) answered before Django's request
cycle — no middleware (session, CSRF, messages, auth), URL resolution or template machinery — and every
other request, and every hot request the lean path does not serve, by Django. docs/architecture.md,
"The lean path", says why it is here and what it measured."""

import io
import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autumn_admin.settings")

django_application = get_wsgi_application()

from django.db import connections  # noqa: E402

from autumn_admin.api import hot  # noqa: E402  (after Django is set up)

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


def application(environ, start_response):
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in hot.PATHS:
        return django_application(environ, start_response)
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return django_application(environ, start_response)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # Django reads it again when it answers
    close_old_connections()  # as Django does at the start and end of each request (CONN_MAX_AGE, health)
    try:
        done = hot.answer(environ["PATH_INFO"][len("/v1/") :], _headers(environ), body)
    except Exception:
        log.exception("The lean path failed on %s; Django answers it", environ["PATH_INFO"])
        done = None  # Django answers: the same operation, and its one way of reporting what failed
    finally:
        close_old_connections()
    if done is None:
        return django_application(environ, start_response)
    status, payload = done
    start_response(
        f"{status} OK",
        [("Content-Type", hot.CONTENT_TYPE), ("Content-Length", str(len(payload)))],
    )
    return [payload]
