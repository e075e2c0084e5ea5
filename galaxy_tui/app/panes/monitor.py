"""Monitor pane: the selected run live: progress, loss and accuracy curves, the probe, GPU or CPU gauges, log."""

from __future__ import annotations

import os

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.curves import SMOOTHING, RunningEma, robust_ylim, visible
from galaxy_tui.app.dialogs import confirm
from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.gauges import GaugeGrid, GaugeRow
from galaxy_tui.app.run_state import before_the_worker, state_text
from galaxy_tui.app.store import RunRecord
from galaxy_tui.app.views import LogScreen
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.errors import GalaxyError
from galaxy_tui.run_model import batch_split, trainable_parts
from galaxy_tui.runs import stop_run
from galaxy_tui.scores import score_named, score_of_epochs
from galaxy_tui.telemetry import Reading, for_run


def downsample(xs: list[float], ys: list[float], width: int) -> tuple[list[float], list[float]]:
    """At most `width` points: the mean of each bucket, so a long run's curve keeps its shape."""
    if len(xs) <= width or width < 2:
        return xs, ys
    edges = np.linspace(0, len(xs), width + 1).astype(int)
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    return ([float(x[a:b].mean()) for a, b in zip(edges[:-1], edges[1:]) if b > a],
            [float(y[a:b].mean()) for a, b in zip(edges[:-1], edges[1:]) if b > a])


# Widths of the widest values ("recover", "over", "123.4 GiB", "12.34"): the columns stand still as trials
# arrive, and never wait for the table's own measuring (DataTable re-measures when idle). The outcome comes
# before the figures: a 40-column box shows phase, micro, fits and peak.
SHORT_PANE = 24  # rows of the pane below which the log tail goes
LEGEND_ROWS = 14  # rows of a plot below which its legend would cover the curves
PROBE_COLUMNS = (("phase", 7), ("micro", 5), ("fits", 4), ("peak", 9), ("budget", 9), ("s", 5))


def probe_row(trial: dict) -> tuple[str | Text, ...]:
    fits = Text("yes", style="green") if trial["fits"] else Text("OOM" if trial["peak_bytes"] is None else "over",
                                                                 style="bold red")
    return (trial["phase"], str(trial["micro_batch"]), fits, format_bytes(trial["peak_bytes"]),
            format_bytes(trial["budget_bytes"]), f"{trial['seconds']:.2f}")


def format_bytes(n: float | None) -> str:
    if n is None:
        return "N/A"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return ""


def _gib(n: int | None) -> str:
    return "N/A" if n is None else f"{n / 2**30:.1f}"


def _na(value: object, fmt: str = "{}") -> str:
    return "N/A" if value is None else fmt.format(value)


def epochs_done(record: RunRecord) -> int:
    """The events say an epoch ended up to 2 s before the heartbeat's status.json does."""
    last_event = int(record.model.epochs[-1].get("epoch", 0)) if record.model.epochs else 0
    return max(record.info.epoch, last_event)


def eta_seconds(record: RunRecord) -> float | None:
    model, info = record.model, record.info
    if not info.is_live or info.state == "queued" or not model.epochs or not model.last_step:
        return None  # ended, or starting: the last step is a previous attempt's
    per_epoch = float(np.mean([e["seconds"] for e in model.epochs[-3:]]))
    step, done = model.last_step, epochs_done(record)
    done_fraction = step["step_in_epoch"] / max(1, step["steps_per_epoch"]) if step["epoch"] > done else 0.0
    return max(0.0, (info.epochs - done - done_fraction) * per_epoch)


def header_text(record: RunRecord, width: int = 200) -> Text:
    info, model = record.info, record.model
    fields = [Text(info.id, style="bold"), state_text(info.state)]
    starting = info.state == "queued"  # a resumed run's last step is its previous attempt's
    if starting:
        fields.append(Text(before_the_worker(info.state), style="dim"))
    elif info.epochs:
        fields += [Text(f"attempt {info.attempt}"), Text(f"epoch {epochs_done(record)}/{info.epochs}")]
    if model.last_step and not starting:
        s = model.last_step
        fields += [Text(f"step {s['step_in_epoch']}/{s['steps_per_epoch']} of epoch {s['epoch']}"),
                   Text(f"{s['samples_per_s']:.0f} samples/s"), Text(f"loss {s['loss']:.4f}")]
    eta = eta_seconds(record)
    if eta is not None:
        fields.append(Text(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s"))
    if model.prepare and model.prepare[0] < model.prepare[1] and info.state == "preparing":
        fields.append(Text(f"preparing images {model.prepare[0]}/{model.prepare[1]}"))
    text = pack_fields(fields, width)
    if info.message:
        text.append(f"\n{info.message}", style="red" if info.state in ("failed", "killed", "lost") else "yellow")
    if model.final and model.final.get("type") == "failed" and model.final.get("message") and not info.message:
        text.append(f"\n{model.final['message']}", style="red")
    return text


def probe_summary(record: RunRecord) -> Text:
    model = record.model
    world = int((model.started or {}).get("world") or 1)
    text = Text()
    if model.probe_done:
        d = model.probe_done
        text.append(f"micro-batch {batch_split(d['micro_batch'], d['accumulation'], d['effective_batch'], world)}",
                    style="bold green")
    elif model.probe_trials:
        last = model.probe_trials[-1]
        if last.get("predicted"):
            text.append(f"fitted line predicts up to {last['predicted']}", style="cyan")
    if model.trainable:
        text.append(("\n" if text else "") + "trains " + "\n".join(trainable_parts(model.trainable)), style="cyan")
    for oom in model.ooms[-3:]:
        effective = model.probe_done["effective_batch"] if model.probe_done else None
        after = (batch_split(oom["micro_batch_after"], oom["accumulation"], effective, world) if effective
                 else f"{oom['micro_batch_after']}")
        text.append(f"\nOOM spike at step {oom['step']}: {oom['micro_batch_before']} -> {after}",
                    style="bold yellow")
    return text


def gpu_rows(record: RunRecord, reading: Reading, history: list[Reading]) -> list[GaugeRow]:
    """Per GPU of the run: memory, power, utilisation and temperature now, with their history during
    this run (from its events, so it survives a reopen; the app's own samples for runs without them)."""
    rows: list[GaugeRow] = []
    run_uuids = list((record.model.started or {}).get("gpus") or [])
    for cuda_index, gpu in for_run(reading.gpus, run_uuids):
        # the run's devices by their CUDA number; with no record of them (CPU run, older run) NVML's
        label = f"cuda:{cuda_index}" if cuda_index is not None else f"GPU{gpu.index}"
        if gpu.lost:
            rows.append(GaugeRow(label, Text(label, style="bold red"), Text("lost (off the bus?)", style="red"), None))
            continue
        if run_uuids and cuda_index is None:
            rows.append(GaugeRow(label, Text(label, style="dim"), Text(
                f"not this run's: {_gib(gpu.mem_used)}/{_gib(gpu.mem_total)}G {_na(gpu.util, '{}%')}",
                style="dim"), None))
            continue
        events = record.model.gpu.get(cuda_index, []) if cuda_index is not None else []

        def series(name: str, index: int = gpu.index) -> list[float]:
            if events:
                return [float(e.get(name) or 0) for e in events]
            return [float(getattr(g, name) or 0) for r in history if r.available for g in r.gpus if g.index == index]

        share = (gpu.mem_used or 0) / gpu.mem_total if gpu.mem_total else 0.0
        memory = Text("█" * round(share * 6) + "░" * (6 - round(share * 6)), style="red" if share > 0.92 else "green")
        memory.append(f" {_gib(gpu.mem_used)}/{_gib(gpu.mem_total)}G")
        rows += [GaugeRow(f"{label} mem", Text(label, style="bold"), memory, series("mem_used")),
                 GaugeRow(f"{label} power", " power",
                          f"{_na(gpu.power_w, '{:.0f}')}/{_na(gpu.power_limit_w, '{:.0f}')} W", series("power_w")),
                 GaugeRow(f"{label} util", " util", _na(gpu.util, "{}%"), series("util")),
                 GaugeRow(f"{label} temp", " temp", _na(gpu.temp_c, "{}°C"), series("temp_c"))]
    energy = record.model.energy_summary()
    if energy:
        rows.append(GaugeRow("energy", "energy", Text(energy.removeprefix("energy "), overflow="ellipsis"), None))
    return rows


def host_rows(record: RunRecord) -> list[GaugeRow]:
    """The worker's CPU and RAM from its `host` events: now (while it runs) and over the run."""
    samples = record.model.host
    if not samples:
        waiting = before_the_worker(record.info.state) if record.info.is_live else "no CPU/RAM record for this run"
        return [GaugeRow("host none", "", Text(waiting, style="dim"), None)]
    last = samples[-1]
    cpu = f"{last['cpu_percent']:.0f}%" if record.info.is_live else "ended"
    peak = max(s["rss_bytes"] for s in samples)
    ram = format_bytes(last["rss_bytes"]) if record.info.is_live else f"peak {format_bytes(peak)}"
    return [GaugeRow("host cpu", "CPU", cpu, [float(s["cpu_percent"]) for s in samples]),
            GaugeRow("host ram", "RAM", ram, [float(s["rss_bytes"]) for s in samples])]


class MonitorPane(Widget, can_focus=True):
    BINDINGS = bindings_for("monitor")

    def __init__(self) -> None:
        super().__init__(id="monitor-pane")
        self._painted = -1
        self._plotted: tuple | None = None  # (run, steps, epochs, plot sizes) the curves were drawn for
        self._header: Text | None = None
        self._probe_text: Text | None = None
        self._log_text: str | None = None
        self._shown_run: str | None = None
        self._probe_rows = 0
        self.log_scale = False
        self.smoothed = False
        self._ema: tuple[tuple[str, int], RunningEma] | None = None  # (run, its steps list) the EMA follows

    def compose(self) -> ComposeResult:
        yield Static("no run selected: launch one in pane 2 (l), or pick one in the runs list (r)",
                     id="monitor-header")
        with Horizontal(id="plots"):
            yield PlotextPlot(id="loss-plot")
            yield PlotextPlot(id="acc-plot")
        with Horizontal(id="monitor-lower"):
            with Vertical(id="probe-box"):
                yield WholeTable(id="probe-table", show_cursor=False)
                yield Static("", id="probe-summary")
            with Vertical(id="gauges"):
                yield Static("", id="gauge-note")
                yield GaugeGrid(id="gauge-grid")
        yield Static("", id="log-tail")

    def on_mount(self) -> None:
        if not self.query("#probe-table"):
            return  # the app is closing while the pane, built after the first paint, was still being mounted
        self.query_one("#probe-table", WholeTable).set_columns([label for label, _ in PROBE_COLUMNS],
                                                               least=[width for _, width in PROBE_COLUMNS])
        self.query_one("#loss-plot", PlotextPlot).plt.title("loss")
        self.set_interval(0.25, self.repaint)
        self.set_interval(1.0, self.repaint_slow)

    @property
    def record(self) -> RunRecord | None:
        return self.app.store.current  # type: ignore[attr-defined]

    def on_resize(self) -> None:
        self._painted = -1  # the curves are downsampled to the plot's width: redo them at the new size
        self._header = None
        # a short terminal (80x24): the log tail gives its rows to the plots (w shows the whole log)
        self.set_class(self.size.height < SHORT_PANE, "short")

    @property
    def _short_plots(self) -> bool:
        """Too few rows for a legend inside the plot without covering the curves: it goes in the title."""
        return self.query_one("#loss-plot").size.height < LEGEND_ROWS

    def repaint(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        if store.version == self._painted or not self.display or self.size.width == 0:
            return
        self._painted = store.version
        record = self.record
        if record is None:
            return
        if record.info.id != self._shown_run:  # it follows another run now: start its views afresh
            self._shown_run = record.info.id
            self._new_run()
        header = self.query_one("#monitor-header", Static)
        text = header_text(record, max(20, header.content_size.width))
        if text != self._header:
            self._header = text
            header.update(text)
        plots = (record.info.id, len(record.model.steps), len(record.model.epochs),
                 self.query_one("#loss-plot").size, self.query_one("#acc-plot").size)
        if plots != self._plotted:  # only new steps and epochs move the curves
            self._plotted = plots
            self._plot(record)
        self._probe(record)

    def _plot(self, record: RunRecord) -> None:
        model = record.model
        loss_widget = self.query_one("#loss-plot", PlotextPlot)
        plt = loss_widget.plt
        plt.clear_data()
        short = self._short_plots
        plt.title("loss" + (f" · EMA {SMOOTHING}" if self.smoothed else "") + (" · log" if self.log_scale else "")
                  + (" · ⢕ train  • val" + ("  ⢕ lr (right)" if model.lrs else "") if short else ""))
        plt.xlabel("" if short else "optimizer step")
        plt.yscale("log" if self.log_scale else "linear", yside="left")
        width = max(10, loss_widget.size.width - 10)
        xs: list[float] = []
        ys: list[float] = []
        if model.steps:
            losses = [v for _, v in model.steps]
            xs, ys = downsample([s for s, _ in model.steps], self._smoothed(record, losses) if self.smoothed
                                else losses, width)
        steps, val_loss = model.epoch_series("step", "val_loss")
        limits = robust_ylim([ys, val_loss], self.log_scale)
        for label, marker, (x, y) in (("train", "braille", visible(xs, ys, limits)),
                                      ("val", "dot", visible(steps, val_loss, limits))):
            if x:
                plt.plot(x, y, label=None if short else label, marker=marker, yside="left")
        if limits:  # plotext takes a log axis's limits as exponents
            plt.ylim(*(np.log10(limits) if self.log_scale else limits), yside="left")
        if model.lrs:  # on the right axis, from 0 to its peak, with short tick labels (plotext's run to 20 digits)
            lr_steps, lrs = downsample([s for s, _ in model.lrs], [v for _, v in model.lrs], width)
            peak = max(lrs) or 1.0
            plt.plot(lr_steps, lrs, label=None if short else "lr", marker="braille", yside="right", color="gray")
            plt.ylim(0, peak * 1.05, yside="right")
            ticks = [0.0, peak / 2, peak]
            plt.yticks(ticks, ["0", f"{peak / 2:.1e}", f"{peak:.1e}"], yside="right")
        loss_widget.refresh()
        acc_widget = self.query_one("#acc-plot", PlotextPlot)
        acc_widget.plt.clear_data()
        score = score_named(record.info.metric) if not model.epochs else score_of_epochs(model.epochs)
        acc_widget.plt.title(score.label + ("" if score.higher_is_better else " (lower is better)"))
        acc_widget.plt.xlabel("" if short else "epoch")
        epochs, values = visible(*model.epoch_series("epoch", score.key), None)
        if epochs:
            acc_widget.plt.plot(epochs, values, marker="dot", label=None if short else score.label)
            acc_widget.plt.ylim(0, 1 if score.higher_is_better else max(values) * 1.1 or 1)
        acc_widget.refresh()

    def _smoothed(self, record: RunRecord, losses: list[float]) -> list[float]:
        """The EMA, extended by the steps that arrived since the last repaint. A resume replaces the run's
        list of steps (it drops those past the checkpoint): a new list starts the average again."""
        key = (record.info.id, id(record.model.steps))
        if self._ema is None or self._ema[0] != key:
            self._ema = (key, RunningEma())
        running = self._ema[1]
        return running.extend(losses[len(running.values):])

    def _probe(self, record: RunRecord) -> None:
        trials = record.model.probe_trials
        if len(trials) != self._probe_rows:
            self.query_one("#probe-table", WholeTable).set_rows([Row(str(i), probe_row(t))
                                                                  for i, t in enumerate(trials)])
        self._probe_rows = len(trials)
        summary = probe_summary(record)
        if summary != self._probe_text:
            self._probe_text = summary
            self.query_one("#probe-summary", Static).update(summary)

    def _new_run(self) -> None:
        self._probe_rows, self._probe_text = 0, None
        self.query_one("#probe-table", WholeTable).set_rows([])

    # ------------------------------------------------------------------ once a second
    def repaint_slow(self) -> None:
        record = self.record
        if record is None or not self.display:
            return
        self._gauges(record, self.app.telemetry.latest, self.app.telemetry.history)  # type: ignore[attr-defined]
        self._log(record)

    def _gauges(self, record: RunRecord, reading: Reading, history: list[Reading]) -> None:
        note, grid = self.query_one("#gauge-note", Static), self.query_one("#gauge-grid", GaugeGrid)
        if reading.available:
            note.display = False
            grid.show(gpu_rows(record, reading, history))
            return
        note.display = True
        note.update(Text(f"{reading.reason or 'no NVIDIA GPU'}: the worker's CPU and RAM", style="yellow"))
        grid.show(host_rows(record))

    def _log(self, record: RunRecord) -> None:
        path = record.info.dir / "worker.log"
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(path) - 4096))
                room = max(1, self.query_one("#log-tail").content_size.height)
                lines = handle.read().decode("utf-8", "replace").splitlines()[-room:]
        except OSError:
            lines = []
        empty = before_the_worker(record.info.state) if record.info.is_live else "worker.log is empty"
        # one line per log line, cut with an ellipsis: a wrapped line would push its neighbours out
        text = "\n".join(lines) or empty
        if text != self._log_text:
            self._log_text = text
            self.query_one("#log-tail", Static).update(Text(text, style="dim", no_wrap=True, overflow="ellipsis"))

    # ------------------------------------------------------------------ actions
    def action_follow_live(self) -> None:
        self.app.pin_run(None)  # type: ignore[attr-defined]
        self.app.notify("the Monitor follows the newest live run", timeout=3)

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._replot()

    def action_smoothing(self) -> None:
        self.smoothed = not self.smoothed
        self._replot()

    def _replot(self) -> None:
        self._plotted, self._painted = None, -1
        self.repaint()

    def action_worker_log(self) -> None:
        record = self.record
        if record is None:
            self.app.notify("no run to show the log of", severity="warning")
            return
        self.app.push_screen(LogScreen(record.info.dir / "worker.log"))

    def action_stop(self) -> None:
        record = self.record
        if record is None or not record.info.is_live:
            self.app.notify("the selected run is not running", severity="warning")
            return

        def answered(choice: str | None) -> None:
            if choice != "yes":
                return
            try:
                stop_run(self.app.registry, record.info.id)  # type: ignore[attr-defined]
            except GalaxyError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify(f"stopping {record.info.id}: it finishes the step and checkpoints")

        self.app.push_screen(confirm(f"Stop run {record.info.id}? It checkpoints and can be resumed.",
                                     "Stop", "Keep running"), answered)
