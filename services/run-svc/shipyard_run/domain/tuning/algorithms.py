"""The search and early-stopping algorithms a study can use, and the settings each takes.

Names and settings are Katib's suggestion services' (pkg/suggestion/v1beta1/{optuna,skopt,hyperband,
goptuna}, pkg/earlystopping/v1beta1/medianstop): each setting's text is read into the type the
algorithm uses and checked there, so a wrong value is heard at submit rather than when trials start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.kit.errors import InvalidArgument

SettingValue = int | float | str | None


@dataclass(frozen=True)
class Setting:
    """How one setting is read: ``read`` raises ValueError for text that is not ``expected``."""

    read: Callable[[str], SettingValue]
    expected: str


def _counting(text: str) -> SettingValue:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_int(least: int) -> Callable[[str], SettingValue]:
    def read(text: str) -> SettingValue:
        value = int(text)
        if value < least:
            raise ValueError(text)
        return value
    return read


def _positive(text: str) -> SettingValue:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _one_of(*choices: str, none: tuple[str, ...] = ()) -> Callable[[str], SettingValue]:
    def read(text: str) -> SettingValue:
        if text in none:
            return None
        if text not in choices:
            raise ValueError(text)
        return text
    return read


def _name(text: str) -> SettingValue:
    if not text:
        raise ValueError(text)
    return text


SEED = Setting(_counting, "an integer ≥ 0")
COUNT = Setting(_counting, "an integer ≥ 0")
_TPE = {"n_startup_trials": COUNT, "n_ei_candidates": COUNT, "random_state": SEED}

ALGORITHMS: dict[str, dict[str, Setting]] = {
    "random": {"random_state": SEED},
    "grid": {"random_state": SEED},
    "tpe": _TPE,
    "multivariate-tpe": _TPE,
    "cmaes": {
        "restart_strategy": Setting(_one_of("ipop", "bipop", none=("none", "None")),
                                    "one of ipop, bipop, none"),
        # Katib lets sigma be 0; CMA-ES cannot start from a zero step size.
        "sigma": Setting(_positive, "a number > 0"),
        "random_state": SEED,
    },
    "sobol": {"random_state": SEED},
    "bayesianoptimization": {
        "base_estimator": Setting(_one_of("GP", "RF", "ET", "GBRT"), "one of GP, RF, ET, GBRT"),
        "n_initial_points": COUNT,
        "acq_func": Setting(_one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
                            "one of gp_hedge, LCB, EI, PI, EIps, PIps"),
        "acq_optimizer": Setting(_one_of("auto", "sampling", "lbfgs"), "one of auto, sampling, lbfgs"),
        "random_state": SEED,
    },
    "hyperband": {
        "resource_name": Setting(_name, "the name of an int or double parameter"),
        # eta 1 would make hyperband's bracket count log(r_l)/log(1): no brackets at all.
        "eta": Setting(_positive_int(2), "an integer ≥ 2"),
        "r_l": Setting(_positive, "a number > 0"),
    },
}
EARLY_STOPPING: dict[str, dict[str, Setting]] = {
    "medianstop": {
        "min_trials_required": Setting(_positive_int(1), "an integer ≥ 1"),
        "start_step": Setting(_positive_int(1), "an integer ≥ 1"),
    },
}
# Katib's algorithms a study cannot run: said by name rather than as merely unknown.
REFUSED = {
    "pbt": "population-based training needs trials that share checkpoints, which runs do not",
    "enas": "neural architecture search (enas) is not supported",
    "darts": "neural architecture search (darts) is not supported",
}


def read_settings(
    algorithm: str, settings: list[tuple[str, str]], known: dict[str, Setting], path: str,
) -> tuple[tuple[str, SettingValue], ...]:
    """Each (name, text) setting read into its typed value; ``path`` is the settings list's field."""
    values: list[tuple[str, SettingValue]] = []
    seen: set[str] = set()
    for index, (name, text) in enumerate(settings):
        setting = known.get(name)
        if setting is None:
            takes = ", ".join(sorted(known)) or "no settings"
            raise InvalidArgument(f"{path}[{index}].name",
                                  f"{algorithm} has no setting {name!r} (it takes {takes})")
        if name in seen:
            raise InvalidArgument(f"{path}[{index}].name", f"setting {name!r} is given twice")
        seen.add(name)
        try:
            values.append((name, setting.read(text)))
        except ValueError:
            raise InvalidArgument(f"{path}[{index}].value",
                                  f"{name} must be {setting.expected}, not {text!r}") from None
    return tuple(values)
