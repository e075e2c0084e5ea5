"""Loss curves a person can read: TensorBoard-style smoothing and a y-range an outlier does not flatten;
the Monitor's keys for them and the learning-rate curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixture_runs import fixture_workspace
from galaxy_tui.app.curves import RunningEma, ema, robust_ylim
from galaxy_tui.app.main import GalaxyApp
from pilot_helpers import NoGpu, region_text, screen_text, until


def test_the_ema_is_debiased_and_follows_a_constant_at_once() -> None:
    assert ema([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # not pulled towards 0 at the start
    noisy = 1 + np.random.default_rng(0).normal(0, 0.5, 400)
    assert np.std(ema(list(noisy))[100:]) < np.std(noisy[100:]) / 3


def test_the_running_ema_extended_piece_by_piece_equals_the_whole() -> None:
    values = list(np.random.default_rng(1).normal(1, 0.3, 500))
    running = RunningEma()
    for start in range(0, 500, 37):  # as steps arrive between repaints
        running.extend(values[start:start + 37])
    assert running.values == pytest.approx(ema(values))


def test_a_first_epoch_spike_does_not_flatten_the_rest() -> None:
    losses = [50.0] + list(np.linspace(1.0, 0.2, 199))  # step 1 is 50x the rest
    low, top = robust_ylim([losses])
    assert 0 <= low < 0.2 and 1.0 <= top < 2.0
    log_low, log_top = robust_ylim([losses], log=True)
    assert 0 < log_low < 0.2 and log_top < 50
    assert robust_ylim([[]]) is None and robust_ylim([[float("nan")]]) is None


async def test_the_monitor_toggles_log_scale_and_smoothing_and_draws_the_learning_rate(tmp_path: Path) -> None:
    app = GalaxyApp(fixture_workspace(tmp_path), telemetry=NoGpu())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.store.current is not None and app.store.current.model.steps)
        await pilot.press("3")
        plot = app.query_one("#loss-plot")

        def drawn() -> str:  # the loss plot's own cells
            return region_text(app, plot)

        await until(pilot, lambda: "optimizer step" in drawn() and " lr" in drawn() and " val" in drawn())
        assert "epoch" in screen_text(app)  # the accuracy plot's unit
        await pilot.press("y", "e")
        await until(pilot, lambda: "loss · EMA 0.9 · log" in screen_text(app))
        await pilot.press("y")
        await until(pilot, lambda: "loss · EMA 0.9 " in screen_text(app) and "· log" not in screen_text(app))
