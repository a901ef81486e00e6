"""The parallel-coordinates view of a study (parameters → objective), laid out here and drawn by the page
as SVG: one vertical axis per parameter plus the objective, one line per succeeded trial, coloured by its
objective (darker is better). uPlot draws no such chart, and a server-drawn SVG needs no script.

Numeric axes span the parameter's feasible space (log-scaled for a log distribution); categorical and
discrete axes place their list values evenly, in the order the tuning file lists them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.contracts.run.v1 import studies_pb2 as pb

AXIS_GAP = 170  # px between axes
TOP, BOTTOM, SIDE = 34, 40, 70  # px around the plot: axis names above, tick labels beside
HEIGHT = 260  # px of each axis
WORSE, BETTER = (0xC9, 0xD3, 0xE6), (0x1D, 0x47, 0xB5)  # a line's colour from worst to best objective
LISTED_TICKS = 12  # a list axis with more values names only its ends


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Axis:
    name: str
    x: float
    ticks: tuple[Tick, ...]


@dataclass(frozen=True)
class Line:
    trial: str
    number: int
    points: str  # the SVG polyline's "x,y x,y …"
    color: str
    best: bool
    title: str  # the trial's values, read out and shown on hover
    values: tuple[str, ...]  # on each axis, as the table beside the chart shows them


@dataclass(frozen=True)
class ParallelCoordinates:
    width: int
    height: int
    axes: tuple[Axis, ...]
    lines: tuple[Line, ...]
    bottom: float  # the axes' y span, for drawing them
    top: float
    succeeded: int  # succeeded trials with an objective
    limited: bool  # only the best of them are drawn


Scale = Callable[[str], float | None]  # a value as written → its place on the axis, 0 (bottom) to 1 (top)
Ticks = list[tuple[float, str]]  # an axis's labelled places


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label(value: float) -> str:
    return f"{value:.4g}"


def _listed_scale(values: Sequence[str]) -> tuple[Scale, Ticks]:
    place = {v: (i / (len(values) - 1) if len(values) > 1 else 0.5) for i, v in enumerate(values)}
    shown = values if len(values) <= LISTED_TICKS else [values[0], values[-1]]
    return place.get, [(place[v], v) for v in shown]


def _numeric_scale(low: float, high: float, log: bool) -> tuple[Scale, Ticks]:
    if log and low > 0:
        lo, hi = math.log(low), math.log(high)
        to_axis: Callable[[float], float] = math.log
    else:
        lo, hi, to_axis = low, high, float
    span = hi - lo

    def scale(text: str) -> float | None:
        value = _number(text)
        if value is None or (log and low > 0 and value <= 0):
            return None
        return 0.5 if span == 0 else min(1.0, max(0.0, (to_axis(value) - lo) / span))

    ticks = [(0.0, _label(low)), (1.0, _label(high))] if span else [(0.5, _label(low))]
    return scale, ticks


def _parameter_scale(spec: dict[str, Any], seen: Sequence[str]) -> tuple[Scale, Ticks]:
    space = spec.get("feasibleSpace", {})
    listed = [str(v) for v in space.get("list", [])]
    if listed or spec.get("parameterType") == "categorical":
        return _listed_scale(listed + [v for v in dict.fromkeys(seen) if v not in listed])
    numbers = [n for n in (_number(v) for v in seen) if n is not None]
    bounds = [n for n in (_number(str(space.get(k, ""))) for k in ("min", "max")) if n is not None]
    low, high = min([*bounds, *numbers], default=0.0), max([*bounds, *numbers], default=0.0)
    log = str(space.get("distribution", "")).startswith("log")
    return _numeric_scale(low, high, log)


def _color(fraction: float) -> str:
    r, g, b = (round(w + (b - w) * fraction) for w, b in zip(WORSE, BETTER, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _best_succeeded(study: pb.Study, trials: Sequence[pb.Trial], most: int | None) -> list[pb.Trial]:
    """The succeeded trials with an objective, by number; only the ``most`` best of them when given."""
    succeeded = [t for t in trials if t.state == pb.TRIAL_STATE_SUCCEEDED and t.has_objective
                 and math.isfinite(t.objective)]
    if most is not None and len(succeeded) > most:
        succeeded.sort(key=lambda t: (t.objective, -t.number), reverse=study.objective_type == "maximize")
        succeeded = succeeded[:most]
    return sorted(succeeded, key=lambda t: t.number)


def parallel_coordinates(study: pb.Study, parameters: Sequence[dict[str, Any]], trials: Sequence[pb.Trial],
                         most: int | None = None) -> ParallelCoordinates | None:
    """The layout for the study's succeeded trials with an objective (the ``most`` best of them when given:
    thousands of lines would hide each other and weigh on the page); None while there are none."""
    shown = _best_succeeded(study, trials, None)
    if not shown:
        return None
    succeeded = len(shown)
    if most is not None and succeeded > most:
        shown = _best_succeeded(study, shown, most)
    specs = {str(p.get("name")): p for p in parameters}
    names = [*specs, *sorted({k for t in shown for k in t.assignment} - set(specs))]
    scales = [_parameter_scale(specs.get(n, {}), [t.assignment.get(n, "") for t in shown]) for n in names]
    objectives = [t.objective for t in shown]
    scales.append(_numeric_scale(min(objectives), max(objectives), log=False))
    axis_names = [*names, f"{study.objective_metric} (objective)"]
    bottom, top = float(TOP + HEIGHT), float(TOP)

    def at(fraction: float) -> float:
        return round(bottom - fraction * HEIGHT, 1)

    axes = tuple(Axis(name, SIDE + i * AXIS_GAP, tuple(Tick(at(f), label) for f, label in ticks))
                 for i, (name, (_, ticks)) in enumerate(zip(axis_names, scales, strict=True)))
    maximize = study.objective_type == "maximize"
    low, high = min(objectives), max(objectives)
    lines = []
    for trial in shown:
        values = [*(trial.assignment.get(n, "") for n in names), repr(trial.objective)]
        places = [scale(value) for (scale, _), value in zip(scales, values, strict=True)]
        if any(p is None for p in places):
            continue
        goodness = 1.0 if high == low else (trial.objective - low) / (high - low)
        goodness = goodness if maximize else 1.0 - goodness
        points = " ".join(f"{axis.x},{at(p)}" for axis, p in zip(axes, places, strict=True) if p is not None)
        described = ", ".join(f"{n}={trial.assignment.get(n, '')}" for n in names)
        lines.append(Line(trial.name, trial.number, points, _color(goodness),
                          trial.name == study.best_trial.name,
                          f"{trial.name}: {described} → {study.objective_metric}={_label(trial.objective)}",
                          (*values[:-1], _label(trial.objective))))
    lines.sort(key=lambda line: line.best)  # the best is drawn last, over the others
    width = SIDE * 2 + AXIS_GAP * (len(axes) - 1)
    return ParallelCoordinates(width, TOP + HEIGHT + BOTTOM, axes, tuple(lines), bottom, top, succeeded,
                               len(shown) < succeeded)
