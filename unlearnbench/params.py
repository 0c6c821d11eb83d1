"""Typed parameters: the one checker every config key goes through.

A component's keyword-only parameters (a method's hyperparameters, a model's widths, a
scenario's fraction, ...) carry their type and range in their annotation, e.g.

    def unlearn(model, ctx, *, epochs: Epochs, lr: LearningRate,
                mode: Literal["reference", "fixed"] = "reference") -> nn.Module

so one checker serves every component, present and future, and a config can never loosen a
rule (the rules live in code, not in the composed config). Torch-free.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Allowed interval of a number; ``None`` is unbounded. ``hint`` replaces the generated
    description in error messages when it says more."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    hint: str | None = None

    def contains(self, v: float) -> bool:
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.high_open
                                                                and v == self.high)))

    def describe(self, kind: str) -> str:
        if self.hint:
            return self.hint
        lo = "-inf" if self.low is None else _num(self.low)
        hi = "inf" if self.high is None else _num(self.high)
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{kind} in {left}{lo}, {hi}{right}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


# Shared vocabulary: the same words mean the same rules in every component.
PositiveInt = Annotated[int, Range(1, 10**9)]
NonNegativeInt = Annotated[int, Range(0, 10**9)]
Epochs = Annotated[int, Range(1, 10_000)]
BatchSize = Annotated[int, Range(1, 10**7)]
LearningRate = Annotated[float, Range(0, 100, low_open=True)]
PositiveFloat = Annotated[float, Range(0, None, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0, None)]
OpenUnit = Annotated[float, Range(0, 1, low_open=True, high_open=True)]  # (0, 1)
UnitInterval = Annotated[float, Range(0, 1)]                              # [0, 1]
Momentum = Annotated[float, Range(0, 1, high_open=True)]                  # [0, 1)
Seed = Annotated[int, Range(0, 2**31 - 1)]
ClassId = Annotated[int, Range(0, 10**6)]


def _split_annotated(tp: Any) -> tuple[Any, list[Any]]:
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        return base, meta
    return tp, []


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def describe(tp: Any) -> str:
    """Human words for what a type admits: `an integer in [1, 10000]`, `one of a, b`."""
    base, meta = _split_annotated(tp)
    rng = next((m for m in meta if isinstance(m, Range)), None)
    if _is_union(base):
        parts = [describe(a) for a in get_args(base) if a is not type(None)]
        text = " or ".join(parts)
        return f"{text} or null" if type(None) in get_args(base) else text
    if get_origin(base) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(base))
    if base is bool:
        return "true or false"
    if base is int:
        return rng.describe("an integer") if rng else "an integer"
    if base is float:
        return rng.describe("a number") if rng else "a finite number"
    if base is str:
        return "a string"
    if get_origin(base) in (list, tuple):
        inner = get_args(base)[0] if get_args(base) else Any
        kind = "a non-empty list" if any(getattr(m, "nonempty", False) for m in meta) \
            else "a list"
        return kind if inner is Any else f"{kind}, each {describe(inner)}"
    if base in (dict, Mapping) or get_origin(base) in (dict, Mapping):
        return "a mapping"
    return getattr(base, "__name__", str(base))


@dataclass(frozen=True)
class Below:
    """The value must be smaller than another keyword parameter of the same component (a
    rule between two parameters, e.g. epochs without a penalty below the epochs)."""

    other: str


@dataclass(frozen=True)
class NonEmpty:
    """Marks a list that must hold at least one element."""

    nonempty: bool = True


def check_value(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` if it has type ``tp`` (and range); raise ConfigError naming ``key``."""
    base, meta = _split_annotated(tp)
    if tp is Any or base is Any or base is inspect.Parameter.empty:
        return value
    if _is_union(base):
        options = get_args(base)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return check_value(key, value, Annotated[(option, *meta)] if meta else option)
            except ConfigError:
                continue
        raise ConfigError(key, _show(value), describe(tp))
    if get_origin(base) is Literal:
        if isinstance(value, str | int | bool) and value in get_args(base) and \
                type(value) in {type(a) for a in get_args(base)}:
            return value
        raise ConfigError(key, _show(value), describe(tp))
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, _show(value), "true or false")
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, _show(value), describe(tp))
        _check_range(key, value, meta, tp)
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ConfigError(key, _show(value), describe(tp))
        rng = next((m for m in meta if isinstance(m, Range)), None)
        # Infinity only where the range is unbounded on that side.
        if math.isinf(value) and (rng is None or (rng.high if value > 0 else rng.low)
                                  is not None):
            raise ConfigError(key, _show(value), describe(tp))
        _check_range(key, value, meta, tp)
        return value
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(key, _show(value), "a string")
        return value
    if get_origin(base) in (list, tuple) or base in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(key, _show(value), describe(tp))
        if any(getattr(m, "nonempty", False) for m in meta) and not value:
            raise ConfigError(key, _show(value), describe(tp))
        args = get_args(base)
        inner = args[0] if args else Any
        for v in value:
            try:
                check_value(key, v, inner)
            except ConfigError:
                raise ConfigError(key, _show(value), describe(tp)) from None
        return value
    if base in (dict, Mapping) or get_origin(base) in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(key, _show(value), "a mapping")
        return value
    return value


def _check_range(key: str, value: float, meta: list[Any], tp: Any) -> None:
    for m in meta:
        if isinstance(m, Range) and not m.contains(value):
            raise ConfigError(key, _show(value), describe(tp))


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def keyword_parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The configurable parameters of a component: its keyword-only parameters (runtime
    objects such as the model or the context are positional)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    return {n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_call(fn: Callable[..., Any], values: Mapping[str, Any], prefix: str,
               extra_keys: tuple[str, ...] = ()) -> None:
    """Every key of ``values`` is a keyword-only parameter of ``fn`` (or one of
    ``extra_keys``) and has its annotated type and range; every required one is present."""
    params = keyword_parameters(fn)
    hints = _hints(fn)
    allowed = sorted({*params, *extra_keys})
    for key, value in values.items():
        if key in extra_keys:
            continue
        if key not in params:
            raise ConfigError(f"{prefix}.{key}", _show(value),
                              f"the keys {', '.join(allowed)}" if allowed
                              else f"no keys ({prefix} takes no parameters)")
        check_value(f"{prefix}.{key}", value, hints.get(key, Any))
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty
               and n not in values]
    if missing:
        raise ConfigError(f"{prefix}.{missing[0]}", "(missing)",
                          describe(hints.get(missing[0], Any)))
    _check_relations(params, hints, values, prefix)


def _check_relations(params: dict[str, inspect.Parameter], hints: dict[str, Any],
                     values: Mapping[str, Any], prefix: str) -> None:
    """The `Below` rules between parameters, on the given values and the defaults."""
    def value(name: str) -> Any:
        return values[name] if name in values else params[name].default

    for name in params:
        for rule in _split_annotated(hints.get(name, Any))[1]:
            if isinstance(rule, Below) and not value(name) < value(rule.other):
                raise ConfigError(f"{prefix}.{name}", _show(value(name)),
                                  f"{describe(hints[name])}, below "
                                  f"{prefix}.{rule.other}={_show(value(rule.other))}")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        return get_type_hints(target, include_extras=True)
    except Exception:  # an unresolvable annotation: checked by the annotation test instead
        return {}


def unchecked_parameters(fn: Callable[..., Any]) -> list[str]:
    """Keyword-only parameters whose number type carries no Range (for the test that every
    component declares its ranges)."""
    hints = _hints(fn)
    return [name for name in keyword_parameters(fn) if _unranged(hints.get(name, Any))]


def unchecked_fields(cls: type) -> list[str]:
    """The same for the fields of a settings dataclass (the train recipe, transfer)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [name for name in cls.__dataclass_fields__  # type: ignore[attr-defined]
            if _unranged(hints.get(name, Any))]


def _unranged(tp: Any) -> bool:
    """A number type (or a union holding one) without a Range; or no annotation at all."""
    if tp is Any:
        return True
    base, meta = _split_annotated(tp)
    bases = [a for a in get_args(base) if a is not type(None)] if _is_union(base) else [base]
    if get_origin(base) in (list, tuple):  # a list's items must be ranged themselves
        bases = [a for a in get_args(base) if a is not Ellipsis]
    for b in bases:
        b_base, b_meta = _split_annotated(b)
        if b_base in (int, float) and not any(isinstance(m, Range) for m in meta + b_meta):
            return True
    return False


def dataclass_call_check(cls: type, values: Mapping[str, Any], prefix: str,
                         extra_keys: tuple[str, ...] = ()) -> None:
    """`check_call` for a dataclass whose fields are the keys (the train recipe)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    allowed = sorted({*fields, *extra_keys})
    for key, value in values.items():
        if key in extra_keys:
            continue
        if key not in fields:
            raise ConfigError(f"{prefix}.{key}", _show(value), f"the keys {', '.join(allowed)}")
        check_value(f"{prefix}.{key}", value, hints[key])
