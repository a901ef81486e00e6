"""A study's parameters as the search libraries see them, and back.

Each searched parameter becomes one coordinate: an Optuna distribution (scikit-optimize's dimension is
derived from it) and the two mappings between a library value and the value a trial is given. Values a
trial gets always lie in the tuning file's feasible space: ints as int, doubles as float on the ``step``
grid when there is one, categorical and discrete as one of the ``list``'s strings.

- int/double, uniform or logUniform, no step (or int step 1): the library's own int/float distribution,
  ``log`` for logUniform.
- int/double, uniform, with a step: the index ``k`` of ``min + k·step`` (an int distribution), so values
  are exact (0.1 + 2·0.1 is 0.3, not 0.30000000000000004) and ordered.
- int/double, logUniform, with a step: sampled log-uniformly, then put on the step grid (hyperopt's
  ``qloguniform``, which Katib's default random and tpe use).
- int/double, normal or logNormal: the quantile ``u`` in [0, 1] of a normal distribution centred in
  the range, with sigma = (max - min)/6 (in log space for logNormal) as Katib's hyperopt service sets it,
  truncated to [min, max]; then put on the step grid. Every algorithm then samples with that shape:
  uniform ``u`` (random, the first trials of tpe) gives normally distributed values.
- discrete: the index into the list sorted by value, so the algorithms see its order.
- categorical: the list, unordered.
- a range with min = max, and hyperband's resource parameter: fixed, not searched.

A grid search uses Katib's grid instead (``grid_values``): int and double ``min, min+step, …`` up to
max, categorical and discrete lists, whatever the distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from shipyard_run.domain.trials import ParameterValue
from shipyard_run.domain.tuning import Parameter, TuningSpec


@dataclass(frozen=True)
class Steps:
    """An int or double range as ``min + k·step`` for k in 0..count-1 (a plain int range has step 1)."""

    low: Decimal
    step: Decimal
    count: int
    integer: bool

    @classmethod
    def of(cls, parameter: Parameter) -> Steps:
        space = parameter.space
        low, high = Decimal(space.min), Decimal(space.max)
        step = Decimal(space.step) if space.step else Decimal(1)
        return cls(low, step, int((high - low) / step) + 1, parameter.type == "int")

    @property
    def high(self) -> Decimal:
        return self.low + (self.count - 1) * self.step

    def value(self, index: int) -> ParameterValue:
        number = self.low + index * self.step
        return int(number) if self.integer else float(number)

    def nearest(self, number: float) -> int:
        """The index of the grid value nearest ``number``, within the range."""
        index = round((Decimal(repr(float(number))) - self.low) / self.step)
        return min(max(int(index), 0), self.count - 1)

    def index(self, number: float) -> int | None:
        """The index of ``number`` when it is on the grid."""
        index = self.nearest(number)
        return index if math.isclose(float(self.value(index)), number, abs_tol=1e-12) else None


@dataclass(frozen=True)
class Coordinate:
    """One searched parameter: ``distribution`` is what the library samples; ``value`` turns a sample
    into the trial's value, ``point`` a trial's value back into a sample (None when it is outside)."""

    name: str
    distribution: BaseDistribution
    kind: str  # plain, stepped, log-stepped, shaped, ordinal, choice
    parameter: Parameter

    def value(self, point: Any) -> ParameterValue:
        """The value a trial is given for the library's ``point``."""
        if self.kind == "choice":
            return str(point)
        if self.kind == "ordinal":
            return _ordered(self.parameter)[int(point)]
        if self.kind == "stepped":
            return Steps.of(self.parameter).value(int(point))
        if self.kind == "shaped":
            return _snapped(self.parameter, _Shape.of(self.parameter).number(float(point)))
        return _snapped(self.parameter, float(point))

    def point(self, value: ParameterValue) -> Any | None:
        """The library's point for a trial's value; None when the value is not in today's space."""
        if self.kind == "choice":
            return str(value) if str(value) in self.parameter.space.values else None
        if self.kind == "ordinal":
            values = _ordered(self.parameter)
            return values.index(str(value)) if str(value) in values else None
        number = _number(value)
        space = self.parameter.space
        if number is None or not float(space.min) <= number <= float(space.max):
            return None
        if self.kind == "stepped":
            return Steps.of(self.parameter).index(number)
        if self.kind == "shaped":
            return _Shape.of(self.parameter).quantile(number)
        if self.kind == "log-stepped":
            return number
        return int(number) if self.parameter.type == "int" else number


@dataclass(frozen=True)
class SearchSpace:
    """What a search algorithm samples (``coordinates``) and the values fixed for every trial."""

    coordinates: tuple[Coordinate, ...]
    fixed: Mapping[str, ParameterValue]
    order: tuple[str, ...]  # the spec's parameters, in its order

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {coordinate.name: coordinate.distribution for coordinate in self.coordinates}

    def assignment(self, points: Mapping[str, Any]) -> dict[str, ParameterValue]:
        """A trial's assignment from the library's points, in the spec's parameter order."""
        values = {c.name: c.value(points[c.name]) for c in self.coordinates}
        values.update(self.fixed)
        return {name: values[name] for name in self.order}

    def points(self, assignment: Mapping[str, ParameterValue]) -> dict[str, Any] | None:
        """The library's points for an earlier trial's assignment; None when it lies outside the space
        (a value the search cannot have suggested)."""
        points: dict[str, Any] = {}
        for coordinate in self.coordinates:
            value = assignment.get(coordinate.name)
            point = None if value is None else coordinate.point(value)
            if point is None:
                return None
            points[coordinate.name] = point
        return points


def search_space(spec: TuningSpec, fixed: Mapping[str, ParameterValue] | None = None) -> SearchSpace:
    """The spec's parameters as coordinates; ``fixed`` parameters (hyperband's resource) are not searched."""
    given = dict(fixed or {})
    coordinates: list[Coordinate] = []
    for parameter in spec.parameters:
        if parameter.name in given:
            continue
        constant = _constant(parameter)
        if constant is not None:
            given[parameter.name] = constant
        else:
            coordinates.append(_coordinate(parameter))
    order = tuple(parameter.name for parameter in spec.parameters)
    return SearchSpace(tuple(coordinates), {name: given[name] for name in order if name in given}, order)


def grid_values(parameter: Parameter) -> list[ParameterValue]:
    """Katib's grid for one parameter: every step of an int or double range, or the list."""
    if parameter.type in ("categorical", "discrete"):
        return list(parameter.space.values)
    steps = Steps.of(parameter)
    return [steps.value(index) for index in range(steps.count)]


def _constant(parameter: Parameter) -> ParameterValue | None:
    space = parameter.space
    if parameter.type in ("categorical", "discrete"):
        return space.values[0] if len(space.values) == 1 else None
    return Steps.of(parameter).value(0) if Decimal(space.min) == Decimal(space.max) else None


def _coordinate(parameter: Parameter) -> Coordinate:
    space = parameter.space
    if parameter.type == "categorical":
        return Coordinate(parameter.name, CategoricalDistribution(space.values), "choice", parameter)
    if parameter.type == "discrete":
        return Coordinate(parameter.name, IntDistribution(0, len(space.values) - 1), "ordinal", parameter)
    steps = Steps.of(parameter)
    stepped = bool(space.step) and not (parameter.type == "int" and steps.step == 1)
    log = space.distribution == "logUniform"
    if space.distribution in ("normal", "logNormal"):
        return Coordinate(parameter.name, FloatDistribution(0.0, 1.0), "shaped", parameter)
    if stepped and log:
        return Coordinate(parameter.name, FloatDistribution(float(steps.low), float(steps.high), log=True),
                          "log-stepped", parameter)
    if stepped:
        return Coordinate(parameter.name, IntDistribution(0, steps.count - 1), "stepped", parameter)
    if parameter.type == "int":
        return Coordinate(parameter.name, IntDistribution(int(space.min), int(space.max), log=log), "plain",
                          parameter)
    return Coordinate(parameter.name, FloatDistribution(float(space.min), float(space.max), log=log), "plain",
                      parameter)


@dataclass(frozen=True)
class _Shape:
    """A normal distribution truncated to [low, high], in log space for logNormal."""

    normal: NormalDist
    low: float
    high: float
    log: bool

    @classmethod
    def of(cls, parameter: Parameter) -> _Shape:
        log = parameter.space.distribution == "logNormal"
        low, high = float(parameter.space.min), float(parameter.space.max)
        if log:
            low, high = math.log(low), math.log(high)
        return cls(NormalDist((low + high) / 2, (high - low) / 6), low, high, log)

    def number(self, quantile: float) -> float:
        """The value at ``quantile`` of the truncated distribution."""
        bottom, top = self.normal.cdf(self.low), self.normal.cdf(self.high)
        inner = min(max(bottom + quantile * (top - bottom), 1e-12), 1 - 1e-12)
        number = min(max(self.normal.inv_cdf(inner), self.low), self.high)
        return math.exp(number) if self.log else number

    def quantile(self, value: float) -> float:
        """Where ``value`` lies in the truncated distribution, in [0, 1]."""
        number = math.log(value) if self.log else value
        bottom, top = self.normal.cdf(self.low), self.normal.cdf(self.high)
        return min(max((self.normal.cdf(number) - bottom) / (top - bottom), 0.0), 1.0)


def _snapped(parameter: Parameter, number: float) -> ParameterValue:
    """``number`` put on the parameter's step grid (ints on whole numbers), within its range."""
    if parameter.type == "int" or parameter.space.step:
        steps = Steps.of(parameter)
        return steps.value(steps.nearest(number))
    return min(max(number, float(parameter.space.min)), float(parameter.space.max))


def _number(value: ParameterValue) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _ordered(parameter: Parameter) -> list[str]:
    return sorted(parameter.space.values, key=Decimal)
