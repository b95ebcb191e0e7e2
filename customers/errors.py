from __future__ import annotations


class ServiceError(Exception):
    """A state change refused for a reason the person or client can act on. Nothing was written.

    `code` is machine-readable (the API returns it); `field` names the input at fault, if any;
    `status` is the HTTP status the API answers with.
    """

    status = 400

    def __init__(
        self, message: str, *, code: str = "invalid_request", field: str | None = None, status: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        if status is not None:
            self.status = status


class Conflict(ServiceError):
    status = 409
