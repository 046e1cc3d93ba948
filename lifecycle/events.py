"""Events as messages: the registry of the session's event methods.

Every event method of :class:`~lifecycle.session.SessionManager` (``start_session``,
``complete_task``, ``tick``, ``create_checkpoint``, ...: :data:`EVENTS`) is declared
with :func:`event`, which also names the table event it fires
(:data:`TABLE_EVENTS`). Each is also a message,
:class:`~lifecycle.records.EventMessage` ``(name, payload)``, that
``manager.apply(message)`` dispatches to that method: the orchestrator-friendly API
(messages are plain data: queue them, send them over a wire, retry them).

This module knows nothing of the session: the façade registers its methods here
when it is defined, and the decorated method hands each call to its manager's
``_run_event`` (which journals it when the manager keeps a journal).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, ParamSpec, Protocol, TypeVar, overload

import attrs
import cattrs

from lifecycle import codec
from lifecycle.errors import InvalidRecord
from lifecycle.records import Checkpoint, EventMessage, Learning, utc
from lifecycle.spec import Event

P = ParamSpec("P")
R = TypeVar("R")

#: Every event a message may name: the manager's undecorated method, by name.
EVENTS: dict[str, Callable[..., Any]] = {}
#: The table event each of them fires (None: no table event, e.g. capture_learning).
TABLE_EVENTS: dict[str, Event | None] = {}
_SIGNATURES: dict[str, inspect.Signature] = {}
#: Payload fields that hold a record, and its class (the rest are JSON as is).
_RECORD_FIELDS: dict[str, type] = {"checkpoint": Checkpoint, "learning": Learning}


class EventHost(Protocol):
    """What a decorated method calls on its manager."""

    def _run_event(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


@overload
def event(fires: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def event(fires: Event | None, /) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def event(fires: Any, /) -> Any:
    """Declare a manager method an event (``@event(Event.RECORD)``; ``@event(None)`` for
    one that fires no table event): it may be named by a message, runs under the
    session's lock, and is journaled when the manager keeps a journal."""
    if callable(fires) and not isinstance(fires, Event):
        return _register(fires, None)
    return functools.partial(_register, fires=fires)


def _register(method: Callable[P, R], fires: Event | None) -> Callable[P, R]:
    name = method.__name__
    EVENTS[name] = method
    TABLE_EVENTS[name] = fires
    _SIGNATURES[name] = inspect.signature(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        host: EventHost = args[0]  # type: ignore[assignment]
        result: R = host._run_event(name, method, args[1:], kwargs)
        return result

    functools.update_wrapper(call, method)
    return call


# -- messages ------------------------------------------------------------------------------


def message(
    name: str, /, *args: Any, idempotency_key: str | None = None, **kwargs: Any
) -> EventMessage:
    """The message for calling event ``name`` with these arguments, e.g.
    ``message("complete_task", "T1", priority="high", idempotency_key="run-7/T1")``.
    Names the events of the loaded :class:`~lifecycle.session.SessionManager`."""
    return build(name, args, kwargs, idempotency_key)


def build(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], idempotency_key: str | None
) -> EventMessage:
    """The message for a call of event ``name`` with ``args`` and ``kwargs``."""
    signature = _signature(name)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        raise InvalidRecord(f"event {name!r}: {exc}; it takes {_params(name)}") from None
    payload: dict[str, Any] = {}
    for param, value in list(bound.arguments.items())[1:]:
        if signature.parameters[param].kind is inspect.Parameter.VAR_KEYWORD:
            payload.update({k: _plain(v) for k, v in value.items()})
        else:
            payload[param] = _plain(value)
    if name == "before_operation":
        payload = {"operation": _operation_payload(payload)}
    return EventMessage(name, payload, idempotency_key=idempotency_key)


def _operation_payload(payload: dict[str, Any]) -> Any:
    """``before_operation("rm -rf x", deletes=True)`` and ``before_operation(Operation(...))``
    both become one ``operation`` mapping."""
    from lifecycle.triggers.base import Operation

    operation = payload.pop("operation")
    if isinstance(operation, str):
        try:
            operation = codec.converter.unstructure(Operation(command=operation, **payload))
        except TypeError as exc:
            raise InvalidRecord(f"event 'before_operation': {exc}") from None
    return operation


def _plain(value: Any) -> Any:
    """A JSON-ready form of an argument (records and enums unstructured, iterables listed)."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return codec.converter.unstructure(value)
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return [_plain(v) for v in value]
    return value


def _signature(name: str) -> inspect.Signature:
    signature = _SIGNATURES.get(name)
    if signature is None:
        known = ", ".join(sorted(EVENTS))
        raise InvalidRecord(f"unknown event {name!r}; events are: {known}")
    return signature


def _params(name: str) -> str:
    params = list(_SIGNATURES[name].parameters.values())[1:]
    return "(" + ", ".join(str(p).split(":")[0] for p in params) + ")"


def arguments(msg: EventMessage) -> dict[str, Any]:
    """The keyword arguments ``msg`` calls its event method with (records restructured)."""
    from lifecycle.triggers.base import Operation

    signature = _signature(msg.name)
    kwargs = dict(msg.payload)
    try:
        for field, cls in _RECORD_FIELDS.items():
            if isinstance(kwargs.get(field), dict):
                kwargs[field] = codec.converter.structure(kwargs[field], cls)
        if msg.name == "before_operation" and isinstance(kwargs.get("operation"), dict):
            kwargs["operation"] = codec.converter.structure(kwargs["operation"], Operation)
        if isinstance(kwargs.get("at"), str):
            kwargs["at"] = utc(kwargs["at"])
        signature.bind(None, **kwargs)
    except (TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise InvalidRecord(
            f"event {msg.name!r} with payload {sorted(msg.payload)}: {exc}; "
            f"it takes {_params(msg.name)}"
        ) from None
    return kwargs


# -- the per-manager journal state -----------------------------------------------------
