"""A task's contract, read from its type hints: validate arguments, validate and dump results."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from pydantic import TypeAdapter

from .exceptions import BadRequest, ConfigurationError, InvalidArguments
from .shapes import element_bound, fail_fast_validator

#: Errors of a refused call listed in its message and details (the rest are counted).
MAX_ERRORS = 20
#: Errors described at all; past this many, only their count (describing each costs).
_LISTED_AT_MOST = 1000

_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD

#: Scalar annotations and their strict forms (``strict_arguments``): no ``true`` for an
#: ``int``, no ``"1"`` for an ``int``, no ``1`` for a ``str``, no infinity or NaN for a
#: ``float`` (``1e400`` overflows to infinity). An ``int`` still fits a ``float``.
_STRICT = {
    int: pydantic.StrictInt,
    str: pydantic.StrictStr,
    bool: pydantic.StrictBool,
    float: typing.Annotated[float, pydantic.Strict(), pydantic.AllowInfNan(False)],
}


class Signature:
    """Validates calls to ``fn`` against its annotations with one pydantic model.

    Unannotated parameters accept anything; an unannotated return is passed through
    (it must still be JSON-compatible to travel).
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception as exc:  # a NameError from a forward reference, usually
            raise ConfigurationError(f"cannot resolve type hints of {fn!r}: {exc}") from exc
        self._sig = inspect.signature(fn)
        self._fn, self._hints = fn, hints
        self._model = _arguments_model(fn, self._sig, hints)
        self._strict_model: type[pydantic.BaseModel] | None = None
        self._validators: dict[bool, Callable[[Mapping[str, Any]], dict[str, Any]]] = {}
        # Binding by hand when every parameter is a plain one (no ``*``, ``/``, ``*args``
        # or ``**kwargs``): ``inspect.Signature.bind`` is most of a small call's check.
        params = self._sig.parameters.values()
        plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self._plain_names = tuple(p.name for p in params) if plain else None
        self._known = frozenset(p.name for p in params)
        self._required = frozenset(p.name for p in params if p.default is p.empty)
        self.result_adapter: TypeAdapter[Any] = TypeAdapter(hints.get("return", Any))

    @property
    def arguments_model(self) -> type[pydantic.BaseModel]:
        """The pydantic model of the arguments by name (what ``kwargs`` may hold)."""
        return self._model

    @functools.cached_property
    def element_bound(self) -> int | None:
        """The most arrays, objects and items a valid request for this task holds, if
        every parameter is a scalar; else ``None`` (see :mod:`taskrpc.shapes`)."""
        return element_bound(self._model)

    @property
    def positional(self) -> list[str]:
        """Names of the parameters ``args`` may give, in order."""
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in self._sig.parameters.values() if p.kind in kinds]

    def validate(
        self, args: list[Any], kwargs: dict[str, Any], *, strict: bool = False
    ) -> tuple[list[Any], dict[str, Any]]:
        """Bind, validate and coerce a call's arguments.

        Parameters:
            args: Positional arguments, as decoded.
            kwargs: Keyword arguments, as decoded.
            strict: Refuse lax conversions of scalar parameters (``true`` for an ``int``,
                ``"1"`` for an ``int``, ``1`` for a ``str``).

        Returns:
            The positional and keyword arguments to call the function with.

        Raises:
            InvalidArguments: The arguments do not fit the signature; ``details`` lists the
                failing fields (the first :data:`MAX_ERRORS`; a list, tuple, set or dict
                reports its first bad item only).
            BadRequest: The arguments broke the validator itself (nested past what it
                recurses through): ``type_name`` ``"NestingTooDeep"``.
        """
        names = self._plain_names
        if names is not None and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))
            arguments.update(kwargs)
            keys = arguments.keys()
            given = len(args) + len(kwargs)  # fewer: a keyword repeats a positional
            if len(arguments) == given and self._required <= keys <= self._known:
                return self._validated_plain(names, arguments, strict)
        try:
            bound = self._sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArguments(
                str(exc), type_name="TypeError", details=self._binding_errors(args, kwargs)
            ) from None
        values = self._validated(bound.arguments, strict)
        for name in bound.arguments:
            bound.arguments[name] = values[name]
        return list(bound.args), dict(bound.kwargs)

    def _validated_plain(
        self, names: tuple[str, ...], arguments: dict[str, Any], strict: bool
    ) -> tuple[list[Any], dict[str, Any]]:
        """:meth:`validate` of arguments bound by hand, split as ``bind`` would split them:
        positional up to the first parameter not given, by keyword after it."""
        values = self._validated(arguments, strict)
        args: list[Any] = []
        for name in names:
            if name not in arguments:
                break
            args.append(values[name])
        kwargs = {name: values[name] for name in names[len(args) :] if name in arguments}
        return args, kwargs

    def _validated(self, arguments: Mapping[str, Any], strict: bool) -> dict[str, Any]:
        try:
            return self._validator(strict)(arguments)
        except pydantic.ValidationError as exc:
            raise InvalidArguments(
                _summary(exc), type_name="ValidationError", details=_plain_errors(exc)
            ) from None
        except RecursionError:
            raise BadRequest(
                "arguments nested too deep to validate", type_name="NestingTooDeep"
            ) from None

    def _validator(self, strict: bool) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        """The arguments model's validator, stopping at the first bad item of a list."""
        validator = self._validators.get(strict)
        if validator is None:
            validator = self._validators[strict] = fail_fast_validator(self._model_for(strict))
        return validator

    def _model_for(self, strict: bool) -> type[pydantic.BaseModel]:
        if not strict:
            return self._model
        if self._strict_model is None:
            hints = {name: _STRICT.get(hint, hint) for name, hint in self._hints.items()}
            self._strict_model = _arguments_model(self._fn, self._sig, hints)
        return self._strict_model

    def _binding_errors(self, args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        """Name every field a call that does not bind gets wrong (missing, unexpected)."""
        params = list(self._sig.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        has_var_kw = any(p.kind is _VAR_KEYWORD for p in params)
        has_var_pos = any(p.kind is _VAR_POSITIONAL for p in params)
        errors: list[dict[str, Any]] = []
        if len(args) > len(positional) and not has_var_pos:
            errors.append(
                {
                    "loc": [len(positional)],
                    "msg": "too many positional arguments",
                    "type": "unexpected_positional_argument",
                }
            )
        given = {p.name for p in positional[: len(args)]} | set(kwargs)
        if not has_var_kw:
            known = {p.name for p in params}
            errors += [
                {
                    "loc": [name],
                    "msg": "unexpected keyword argument",
                    "type": "unexpected_keyword_argument",
                }
                for name in kwargs
                if name not in known
            ]
        errors += [
            {"loc": [p.name], "msg": "Field required", "type": "missing"}
            for p in params
            if p.default is p.empty
            and p.name not in given
            and p.kind not in (_VAR_POSITIONAL, _VAR_KEYWORD)
        ]
        return errors[:MAX_ERRORS]

    def dump_result(self, value: Any) -> Any:
        """Validate ``value`` against the return type and reduce it to JSON-compatible data."""
        adapter = self.result_adapter
        return adapter.dump_python(adapter.validate_python(value), mode="json")

    def load_result(self, data: Any) -> Any:
        """Rebuild a result on the caller (a JSON dict becomes the declared model again)."""
        return self.result_adapter.validate_python(data)


def _arguments_model(
    fn: Callable[..., Any], sig: inspect.Signature, hints: dict[str, Any]
) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        annotation: Any = hints.get(name, Any)
        if param.kind is _VAR_POSITIONAL:
            annotation = tuple[annotation, ...]
        elif param.kind is _VAR_KEYWORD:
            annotation = dict[str, annotation]
        default = ... if param.default is inspect.Parameter.empty else param.default
        if param.kind in (_VAR_POSITIONAL, _VAR_KEYWORD):
            default = ...
        fields[name] = (annotation, default)
    return pydantic.create_model(
        f"{fn.__name__}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )


def _plain_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    # include_context/url off: contexts can hold exceptions that do not serialize.
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in _errors(exc)[:MAX_ERRORS]
    ]


def _summary(exc: pydantic.ValidationError) -> str:
    errors = _errors(exc)
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
        for err in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        parts.append(f"and {len(errors) - MAX_ERRORS} more errors")
    return "; ".join(parts)


def _errors(exc: pydantic.ValidationError) -> list[Any]:
    """The errors of ``exc``, or one standing for them all when there are too many to
    list at a reasonable cost (a model's own lists do not stop at their first error)."""
    if exc.error_count() > _LISTED_AT_MOST:
        count = exc.error_count()
        return [{"loc": (), "msg": f"{count} validation errors", "type": "too_many_errors"}]
    return exc.errors(include_url=False, include_context=False, include_input=False)
