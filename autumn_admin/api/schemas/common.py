"""What every operation shares: the request base (`Params`), the field types more than one subject
reads, and the error answers (`ErrorOut`, `ERRORS`).

The API's pydantic models, in this package, are what ninja validates with and builds the OpenAPI
document from, so the document describes exactly what is served. Request models are strict (a string
is not a number, 1 is not true) and ignore unknown keys, as Autumn's API does. A number or boolean with
a default may be left out, but an explicit null is refused like any other wrong type (`Omittable`):
null never silently means the default. Response models list every key the official clients require,
null where empty.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from ninja import Schema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model, model_validator
from pydantic_core import PydanticCustomError

from autumn_admin.api.units import MAX_EPOCH_MS
from customers.errors import ServiceError
from customers.models import CUSTOMER_ID_MAX_LENGTH, CUSTOMER_ID_PATTERN
from customers.validation import validate_customer_id, validate_entity_id

T = TypeVar("T")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave it out to use the default")
    return value


Omittable = Annotated[T, BeforeValidator(_not_null)]
"""A request field that may be left out (its default applies) but not sent as null. Give it the default
`= None` (pydantic does not validate defaults) and treat None as "not sent"."""

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
"""A JSON number in a response: integers stay integers."""


def _whole_float_as_int(value):
    """autumn-sdk types times as floats and sends 1767225600000 as 1767225600000.0: a whole float is that int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


EpochMs = Annotated[
    int,
    BeforeValidator(_whole_float_as_int),
    Field(ge=0, le=MAX_EPOCH_MS, description="Milliseconds since the Unix epoch."),
]


def _customer_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return validate_customer_id(value)
    except ServiceError as exc:
        raise ValueError(exc.message) from None


CustomerId = Annotated[
    Any,
    BeforeValidator(_customer_id),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": CUSTOMER_ID_MAX_LENGTH, "pattern": CUSTOMER_ID_PATTERN}
    ),
]
Slug = Annotated[str, Field(min_length=1, max_length=255)]
NOT_SUPPORTED = "not_supported"


def not_supported(why: str, *, harmless: tuple = ()):
    """A request field Autumn's API defines that this server does not implement (yet): left out or null
    it changes nothing; set, the request is refused with 422 `not_supported` naming the field and saying
    why, never silently ignored (a per-seat check answered for the whole customer, a lock not taken).
    `harmless`: values that ask for what this server does anyway (with_preview false, overage "cap").
    The one way every schema declares such a field, so the OpenAPI document lists it too."""

    def refuse(value: Any) -> Any:
        if value is None or any(value is h or (type(value) is type(h) and value == h) for h in harmless):
            return None
        raise PydanticCustomError(NOT_SUPPORTED, "is not supported here: {why}", {"why": why})

    return Annotated[Any, BeforeValidator(refuse), WithJsonSchema({"description": f"Not supported here: {why}"})]


ASKS_FOR_NOTHING = (False, [], {}, "")
"""Values of a not-supported field that ask for nothing (a false flag, an empty list or object)."""


def not_supported_fields(name: str, fields: dict[str, str], *, harmless: tuple = ASKS_FOR_NOTHING) -> type:
    """A request base declaring many `not_supported` fields at once (what Autumn's plan changes carry
    and this server does not build), each with why; operations' schemas extend it."""
    return create_model(
        name,
        __base__=Params,
        __module__=__name__,
        **{field: (not_supported(why, harmless=harmless), None) for field, why in fields.items()},
    )


def _entity_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return validate_entity_id(value)
    except ServiceError as exc:
        raise ValueError(exc.message) from None


EntityId = Annotated[
    Any,
    BeforeValidator(_entity_id),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": CUSTOMER_ID_MAX_LENGTH, "pattern": CUSTOMER_ID_PATTERN}
    ),
]


NO_AUTO_CREATE = not_supported("a customer is created first, with customers.get_or_create (or POST /customers)")
ENTITY_SCOPE_NOT_BUILT = (
    "an entity's own balances, plans and usage are not built (entities.* manage the entities themselves)"
)
"""Why `entity_id` on a check, a track or a plan change is refused: the entities themselves are built."""
NO_ENTITIES = not_supported(f"{ENTITY_SCOPE_NOT_BUILT}; leave entity_id out")

PLAN_VERSION_MAX = 1_000_000


def whole_number(minimum: int, maximum: int):
    """A version or a count in a request: a whole number from `minimum` to `maximum`, sent as 2 or, as
    autumn-sdk's float fields send it, 2.0; 1.5, "2" and true are refused. The one type every version and
    count of the API takes."""

    def whole(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError("must be a whole number")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum:,} and {maximum:,}")
        return int(value)

    return Annotated[
        Any,
        BeforeValidator(whole),
        WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": maximum}),
    ]


PlanVersion = whole_number(1, PLAN_VERSION_MAX)
Cursor = Annotated[str, Field(max_length=512)]


class Params(Schema):
    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="wrap")
    @classmethod
    def _an_object(cls, value: Any, handler):
        # ninja's Schema reads any value by its attributes (for ORM objects), so a nested request object sent
        # as "x", 5 or [1] would pass as one with nothing set (an unfiltered range, a display cleared):
        # an object is a JSON object, strictly like every other field.
        if not isinstance(value, (dict, BaseModel)):
            raise ValueError("must be an object")
        return handler(value)


class PageParams(Params):
    """The paging of a list: pass a page's next_cursor as start_cursor for the next one."""

    start_cursor: Cursor = ""
    limit: Omittable[whole_number(1, 1000)] = 50


class ErrorOut(Schema):
    message: str
    code: str
    env: Literal["sandbox", "live"] | None


class SuccessOut(Schema):
    success: bool


ERRORS = {(400, 401, 404, 409, 422): ErrorOut}
"""The refusals every operation may answer with, for its `response` map."""
STRIPE_ERRORS = {(400, 401, 404, 409, 422, 502, 503, 504): ErrorOut}
"""The same, for an operation that may call Stripe: its failure, unavailability or time-out too."""
