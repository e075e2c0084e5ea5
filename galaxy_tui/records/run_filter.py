"""The runs list's filter, as typed after `/`: words that must all hold.

    resnet                 text in the run id, experiment, state, tags or note
    state:finished         the state (a prefix: state:fin)
    exp:gz2                the experiment (a substring)
    tag:baseline  #baseline  a tag (exactly)
    acc>0.9  best>=0.95  loss<0.3  f1>0.8  epoch>=10  minutes<5   a figure and a comparison

A run without the figure (no test accuracy yet) does not pass a condition on it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from galaxy_tui.errors import GalaxyError
from galaxy_tui.runs import RunInfo

FIGURES = {"acc": "test accuracy", "f1": "test macro F1", "rmse": "test RMSE (vote fractions)", "loss": "test loss",
           "best": "best validation metric",
           "epoch": "epochs done", "minutes": "training minutes"}
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt, "<": operator.lt, "=": operator.eq}
_CONDITION = re.compile(r"([a-z_]+)(>=|<=|!=|>|<|=)(.*)")


@dataclass(frozen=True)
class RunFacts:
    """What a filter can ask about one run."""
    info: RunInfo
    figures: dict[str, float]
    tags: tuple[str, ...] = ()
    note: str = ""

    @property
    def text(self) -> str:
        return " ".join((self.info.id, self.info.experiment, self.info.state, *self.tags, self.note)).lower()


def run_facts(info: RunInfo, metrics: dict[str, Any] | None, tags: tuple[str, ...] = (), note: str = "") -> RunFacts:
    metrics = metrics or {}
    figures = {"epoch": float(info.epoch)}
    if info.best_metric is not None:
        figures["best"] = info.best_metric
    for name, key in (("acc", "accuracy"), ("f1", "macro_f1"), ("rmse", "rmse"), ("loss", "loss")):
        if isinstance(metrics.get(key), (int, float)):
            figures[name] = float(metrics[key])
    if isinstance(metrics.get("seconds"), (int, float)):
        figures["minutes"] = float(metrics["seconds"]) / 60
    return RunFacts(info, figures, tags, note)


Predicate = Callable[[RunFacts], bool]


def _condition(word: str, name: str, sign: str, value: str) -> Predicate:
    if name not in FIGURES:
        known = ", ".join(f"{k} ({v})" for k, v in FIGURES.items())
        raise GalaxyError(f"filter {word!r}: no figure {name!r}; use one of {known}.")
    try:
        limit = float(value)
    except ValueError:
        raise GalaxyError(f"filter {word!r}: {value!r} is not a number (e.g. {name}{sign}0.9).") from None
    compare = _COMPARISONS[sign]
    return lambda facts: name in facts.figures and compare(facts.figures[name], limit)


def _predicate(word: str) -> Predicate:
    lowered = word.lower()
    key, colon, value = lowered.partition(":")
    if colon and key in ("state", "exp", "experiment", "tag"):
        if not value:
            raise GalaxyError(f"filter {word!r}: say what after the colon (e.g. {key}:finished).")
        if key == "state":
            return lambda facts: facts.info.state.startswith(value)
        if key == "tag":
            return lambda facts: value in (t.lower() for t in facts.tags)
        return lambda facts: value in facts.info.experiment.lower()
    if lowered.startswith("#") and len(lowered) > 1:
        return lambda facts: lowered[1:] in (t.lower() for t in facts.tags)
    condition = _CONDITION.fullmatch(lowered)
    if condition:
        return _condition(word, *condition.groups())
    return lambda facts: lowered in facts.text


@dataclass(frozen=True)
class RunFilter:
    text: str
    predicates: tuple[Predicate, ...]

    def __call__(self, facts: RunFacts) -> bool:
        return all(predicate(facts) for predicate in self.predicates)


def parse_filter(text: str) -> RunFilter:
    """Raises GalaxyError naming the word that cannot be understood and what would be."""
    joined = re.sub(r"\s*(>=|<=|!=|>|<|=)\s*", r"\1", text.strip())  # "acc > 0.9" is acc>0.9
    return RunFilter(text.strip(), tuple(_predicate(word) for word in joined.split()))
