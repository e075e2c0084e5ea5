"""Datasets pane: registered datasets, class counts that follow the labelling live, sample thumbnails."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from galaxy_tui.app.commands import bindings_for
from galaxy_tui.app.dialogs import ChoiceDialog, InputDialog
from galaxy_tui.app.fetch_progress import FetchProgress
from galaxy_tui.app.fields import fit_path
from galaxy_tui.app.folder_classes import FolderClassesDialog, FolderPlan
from galaxy_tui.app.gallery import GalaxyView, GalleryScreen, dataset_galaxies
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.thumbs import Thumbnail, ThumbnailStrip
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.data.count_memo import remember_counts, remembered_counts
from galaxy_tui.data.labels import empty_class_warning
from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching.fetch_jobs import start_fetch_job
from galaxy_tui.registry import FIXED_LABEL_KINDS, Labelling, set_labelling

if TYPE_CHECKING:
    from textual.timer import Timer

    from galaxy_tui.data.catalog import Dataset

SAVE_AFTER_S = 0.6
LABELLING_ACTIONS = ("threshold", "min_votes", "max_artifact", "type_threshold", "next_experiment")
BAR_COLOURS = ("yellow", "cyan", "magenta", "green", "red", "blue", "bright_yellow", "bright_cyan",
               "bright_magenta", "bright_green")


def count_bars(counts: dict[str, int], width: int = 28) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="left", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    top = max(counts.values(), default=0) or 1
    for i, (name, n) in enumerate(counts.items()):
        bar = Text("█" * max(0, round(width * n / top)) or "·", style=BAR_COLOURS[i % len(BAR_COLOURS)])
        table.add_row(name[:22], bar, str(n))
    table.add_row("total", "", str(sum(counts.values())))
    return table


class DatasetsPane(Widget):
    BINDINGS = bindings_for("datasets")

    def __init__(self) -> None:
        super().__init__(id="datasets-pane")
        self.loaded: dict[str, Dataset] = {}
        self._loading: set[str] = set()
        self.labelling = Labelling()
        self.experiment: str | None = None
        self._pending_save: tuple[str, Labelling] | None = None
        self._memo: dict[tuple[str, Labelling], tuple[int, dict[str, int]] | None] = {}
        self._save_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="datasets-left"):
                yield WholeTable(id="datasets-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="dataset-info")
                yield FetchProgress(self.app.workspace)  # type: ignore[attr-defined]
            with VerticalScroll(id="datasets-right"):
                yield Static("", id="labelling")
                yield Static("", id="counts")
                yield Label("samples · Tab, then Enter opens one large · v all of them", classes="section")
                yield ThumbnailStrip(id="dataset-thumbs")

    def on_mount(self) -> None:
        self.query_one("#datasets-table", WholeTable).set_columns(("name", "kind", "rows"))
        self.query_one("#datasets-right").can_focus = False  # Tab goes from the table straight to the samples
        self.reload()

    # ------------------------------------------------------------------ registry
    def reload(self) -> None:
        self._memo.clear()  # the registry changed: its tables may name other files
        self._fill_list()
        if self.app.registry is None:  # type: ignore[attr-defined]
            self.query_one("#dataset-info", Static).update(Text(self.app.registry_error or "", style="red"))  # type: ignore[attr-defined]
            return
        if self.selected is not None:
            self.select(self.selected)

    def _fill_list(self) -> None:
        registry = self.app.registry  # type: ignore[attr-defined]
        rows = []
        for spec in registry.datasets.values() if registry else ():
            loaded = self.loaded.get(spec.name)
            remembered = None if loaded else self._remembered(spec.name)
            count = len(loaded.frame) if loaded else remembered[0] if remembered else "…"
            rows.append(Row(spec.name, (spec.name, spec.kind, str(count))))
        self.query_one("#datasets-table", WholeTable).set_rows(rows)

    @property
    def selected(self) -> str | None:
        tables = self.query("#datasets-table").results(DataTable)
        table = next(tables, None)  # None while the app quits: the list may already be gone
        registry = self.app.registry  # type: ignore[attr-defined]
        if table is None or registry is None or not registry.datasets or table.row_count == 0:
            return None
        return list(registry.datasets)[min(table.cursor_row, len(registry.datasets) - 1)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "datasets-table" and event.row_key.value:
            self.select(str(event.row_key.value))

    def _experiments_using(self, dataset: str) -> list[str]:
        registry = self.app.registry  # type: ignore[attr-defined]
        return [name for name, e in registry.experiments.items() if e.dataset == dataset] if registry else []

    def select(self, name: str) -> None:
        users = self._experiments_using(name)
        if self.experiment not in users:
            self.experiment = users[0] if users else None
        registry = self.app.registry  # type: ignore[attr-defined]
        if self.experiment:
            self.labelling = registry.experiments[self.experiment].labels
        self.refresh_counts()
        self._show_samples()
        if name not in self.loaded and name not in self._loading:
            self._loading.add(name)
            self.query_one("#dataset-info", Static).update(f"loading {name} …")
            self.call_after_refresh(self.load, name)  # after the first paint, which shows remembered counts

    @work(thread=True, group="load-dataset")
    def load(self, name: str) -> None:
        # Imported here, in the loader thread: pandas, h5py and scipy would otherwise delay the first paint.
        from galaxy_tui.data.sources import load_dataset
        registry = self.app.registry  # type: ignore[attr-defined]
        try:
            dataset = load_dataset(registry.dataset(name), registry.cache_dir)
        except GalaxyError as exc:
            deliver(self.app, self._show_error, name, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug or an odd file must not take the app down
            deliver(self.app, self._show_error, name, f"could not be loaded ({type(exc).__name__}: {exc})")
            return
        deliver(self.app, self._loaded, name, dataset)

    def _show_error(self, name: str, message: str) -> None:
        self._loading.discard(name)
        self.query_one("#dataset-info", Static).update(Text(f"{name}: {message}", style="red"))
        self.app.notify(message, title=f"dataset {name}", severity="error", timeout=8)

    def _loaded(self, name: str, dataset: Dataset) -> None:
        self._loading.discard(name)
        self.loaded[name] = dataset
        self._fill_list()
        self._remember(name)
        if self.selected == name:
            self.refresh_counts()
            self._show_samples()

    def _show_samples(self) -> None:
        """The selected dataset's galaxies at the current labelling; none while it loads (never another's)."""
        strip = self.query_one("#dataset-thumbs", ThumbnailStrip)
        dataset = self.loaded.get(self.selected or "")
        if dataset is None:
            self.call_later(strip.clear)
        else:
            strip.show_dataset(dataset, self.labelling)

    def action_gallery(self) -> None:
        dataset = self.loaded.get(self.selected or "")
        if dataset is None:
            self.app.notify("the dataset is still loading", severity="warning", timeout=3)
            return
        gallery = GalleryScreen(dataset, self.labelling, self._similar(dataset.name))
        if not any(len(members) for members in gallery.members):
            lab = self.labelling
            loosest = replace(lab, threshold=0.51)  # the lowest threshold a labelling takes
            remedy = "lower the threshold with - or [" if (dataset.labels(loosest) >= 0).any() else \
                "lower the votes needed with M or allow more artifact votes with a"
            self.app.notify(f"no galaxy of {dataset.name} is labelled at threshold {lab.threshold:.2f} (at least "
                            f"{lab.min_classifications} votes, artifact at most {lab.max_artifact:.2f}): {remedy} "
                            "to see its galaxies", severity="warning", timeout=8)
            return
        self.app.push_screen(gallery)

    def action_open_sample(self) -> None:
        strip = self.query_one("#dataset-thumbs", ThumbnailStrip)
        dataset = self.loaded.get(strip.shown or "")
        if dataset is None or not isinstance(self.app.focused, Thumbnail):
            return
        thumbs = strip.visible()
        galaxies = dataset_galaxies(dataset, [t.row for t in thumbs], [t.class_name for t in thumbs])
        self.app.push_screen(GalaxyView(galaxies, thumbs.index(self.app.focused), self._similar(dataset.name)))

    def action_fetch(self) -> None:
        from galaxy_tui.fetching.sources import SOURCES
        choices = [(name, name, str(k + 1)) for k, name in enumerate(SOURCES)]

        def chosen(name: str | None) -> None:
            if name:
                self.app.run_worker(lambda: self._start_fetch(name), thread=True, group="fetch")
        self.app.push_screen(ChoiceDialog("Fetch which dataset? (in the background: it goes on if you quit)",
                                          choices, dialog_id="fetch"), chosen)

    def _start_fetch(self, name: str) -> None:
        try:
            folder = start_fetch_job(self.app.workspace, name)  # type: ignore[attr-defined]
        except (GalaxyError, OSError) as exc:
            deliver(self.app, self.app.notify, str(exc), title="cannot fetch", severity="error", timeout=10)
            return
        deliver(self.app, self.app.notify, f"fetching {name} in the background ({folder.name})", timeout=5)

    def _similar(self, dataset: str) -> Callable[[str], None]:
        # Here, not at the top: the pane is part of the first paint, and the curation view brings pandas.
        from galaxy_tui.app.curation_view import similar_in_dataset
        registry = self.app.registry  # type: ignore[attr-defined]
        runs_dir = registry.runs_dir if registry else self.app.workspace / "runs"  # type: ignore[attr-defined]
        return similar_in_dataset(self.app, runs_dir, dataset)

    # ------------------------------------------------------------------ labelling
    @property
    def fixed_labels(self) -> bool:
        """The selected dataset's classes come from its files: the labelling keys are off (greyed in the footer)."""
        registry, name = self.app.registry, self.selected  # type: ignore[attr-defined]
        return bool(registry and name in registry.datasets and registry.datasets[name].kind in FIXED_LABEL_KINDS)

    def disabled_reason(self, action: str) -> str | None:
        """Why `action` does nothing for the current selection (None: it works). The palette says it."""
        if action in LABELLING_ACTIONS and self.is_mounted and self.fixed_labels:
            return f"{self.selected} has fixed labels (from its files): the labelling keys do not apply"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if self.disabled_reason(action) else True  # None: shown disabled in the footer

    def refresh_counts(self) -> None:
        name = self.selected
        info, counts_view = self.query_one("#dataset-info", Static), self.query_one("#counts", Static)
        owner = f"labelling of experiment [b]{self.experiment}[/b]" if self.experiment else \
            "no experiment uses this dataset: changes are not saved (create one in pane 2)"
        lab = self.labelling
        self.refresh_bindings()
        if self.fixed_labels:
            self.query_one("#labelling", Static).update(
                "fixed labels: the classes come from the dataset's files, so the threshold, vote and artifact "
                "keys are off")
        else:
            self.query_one("#labelling", Static).update(
                f"{owner}\nthreshold [b]{lab.threshold:.2f}[/b]   min votes [b]{lab.min_classifications}[/b]   "
                f"max artifact [b]{lab.max_artifact:.2f}[/b]\n[dim]+/- 0.01  [ ] 0.05  t type  m/M votes  "
                f"a/A artifact  e next experiment[/dim]")
        dataset = self.loaded.get(name) if name else None
        if dataset is None:
            remembered = self._remembered(name) if name else None
            counts_view.update(count_bars(remembered[1]) if remembered else "")
            return
        counts = dataset.counts(lab)
        counts_view.update(count_bars(counts))
        width = info.content_size.width or max(20, self.query_one("#datasets-left").size.width - 2)
        notes = [fit_path(dataset.location, width), *dataset.problems]
        warning = empty_class_warning(counts, dataset.name) if dataset.has_votes else None
        text = Text("\n".join(notes))
        if warning:
            text.append("\n" + warning, style="bold yellow")
        info.update(text)

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_counts)  # the path line is fitted to the list's width

    def _remembered(self, name: str) -> tuple[int, dict[str, int]] | None:
        """The counts this dataset showed last time at this labelling (drawn until it has loaded)."""
        registry = self.app.registry  # type: ignore[attr-defined]
        if registry is None or name not in registry.datasets:
            return None
        key = (name, self.labelling)
        if key not in self._memo:  # the start-up asks twice (the list's row count, the counts): read once
            self._memo[key] = remembered_counts(registry.cache_dir, registry.dataset(name), self.labelling)
        return self._memo[key]

    def _remember(self, name: str) -> None:
        registry, dataset = self.app.registry, self.loaded.get(name)  # type: ignore[attr-defined]
        if registry is not None and dataset is not None and name in registry.datasets and \
                name == self.selected:
            remember_counts(registry.cache_dir, registry.dataset(name), self.labelling, len(dataset.frame),
                            dataset.counts(self.labelling))

    def _registry_usable(self) -> bool:
        """Keys that change the registry need a valid one: say so instead of failing."""
        if self.app.registry is None:  # type: ignore[attr-defined]
            self.app.notify("experiments.toml has an error (shown above); fix the file first; nothing was changed.",
                            severity="error", timeout=8)
            return False
        return True

    def _set_labelling(self, labelling: Labelling) -> None:
        if not self._registry_usable():
            return
        if not 0.5 < labelling.threshold <= 1.0 or labelling.min_classifications < 0 or \
                not 0.0 <= labelling.max_artifact <= 1.0:
            self.app.bell()
            return
        self.labelling = labelling
        self.refresh_counts()
        self._show_samples()
        self._save_soon()

    def _save_soon(self) -> None:
        """Counts follow every key at once; the file is written once the keys pause."""
        if not self.experiment:
            return
        self._pending_save = (self.experiment, self.labelling)
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(SAVE_AFTER_S, self.flush_save)

    def flush_save(self) -> None:
        if self._pending_save is None:
            return
        (experiment, labelling), self._pending_save = self._pending_save, None
        try:
            self.app.registry = set_labelling(self.app.registry.path, experiment, labelling)  # type: ignore[attr-defined]
        except GalaxyError as exc:
            self.app.notify(str(exc), severity="error", timeout=8)
            return
        self._remember(self.selected or "")

    def on_unmount(self) -> None:
        self.flush_save()  # a key pressed just before quitting is still saved

    def action_threshold(self, delta: float) -> None:
        self._set_labelling(replace(self.labelling, threshold=round(min(1.0, self.labelling.threshold + delta), 2)))

    def action_min_votes(self, delta: int) -> None:
        votes = max(0, self.labelling.min_classifications + delta)
        self._set_labelling(replace(self.labelling, min_classifications=votes))

    def action_max_artifact(self, delta: float) -> None:
        value = round(min(1.0, max(0.0, self.labelling.max_artifact + delta)), 2)
        self._set_labelling(replace(self.labelling, max_artifact=value))

    def action_next_experiment(self) -> None:
        if not self._registry_usable():
            return
        users = self._experiments_using(self.selected or "")
        if users:
            self.experiment = users[(users.index(self.experiment) + 1) % len(users)] if self.experiment in users \
                else users[0]
            self.labelling = self.app.registry.experiments[self.experiment].labels  # type: ignore[attr-defined]
            self.refresh_counts()
            self._show_samples()

    def action_type_threshold(self) -> None:
        def typed(value: str | None) -> None:
            if value is None:
                return
            try:
                threshold = float(value)
            except ValueError:
                threshold = -1.0
            if not 0.5 < threshold <= 1.0:
                self.app.notify(f"threshold {value!r} must be a number in (0.5, 1.0], e.g. 0.8", severity="error")
                return
            self._set_labelling(replace(self.labelling, threshold=round(threshold, 4)))

        self.app.push_screen(InputDialog("Threshold in (0.5, 1.0]:", f"{self.labelling.threshold:g}"), typed)

    def action_add_dataset(self) -> None:
        if not self._registry_usable():
            return

        def typed(value: str | None) -> None:
            if not value or not value.strip():
                return
            from galaxy_tui.data.catalog import list_images  # pandas + h5py: only when asked
            from galaxy_tui.data.detect import detect_dataset
            registry = self.app.registry  # type: ignore[attr-defined]
            try:
                table = detect_dataset(Path(value.strip()), registry.workspace)
            except Exception as exc:  # noqa: BLE001 - GalaxyError says what; anything else must not crash either
                self.query_one("#dataset-info", Static).update(Text(str(exc), style="red"))
                self.app.notify(str(exc), title="cannot add dataset", severity="error", timeout=10)
                return
            if table["kind"] != "image-folder":
                self._add_dataset(value.strip(), table)
                return
            root = Path(value.strip()).expanduser()
            root = root if root.is_absolute() else registry.workspace / root
            folders = {d.name: len(list_images(d)) for d in sorted(root.iterdir()) if d.is_dir()}
            folders = {name: count for name, count in folders.items() if count}

            def planned(plan: FolderPlan | None) -> None:
                if plan is not None:
                    self._add_dataset(value.strip(), {**table, **plan.table_options()})

            self.app.push_screen(FolderClassesDialog(table["path"], FolderPlan.proposed(folders)), planned)

        self.app.push_screen(InputDialog("Path of a dataset (.h5, .csv or a folder of class folders):",
                                         placeholder="data/Galaxy10_DECals.h5",
                                         paths_from=self.app.registry.workspace), typed)  # type: ignore[attr-defined]

    def _add_dataset(self, typed: str, table: dict) -> None:
        from galaxy_tui.data.detect import KIND_NAMES, dataset_files
        registry = self.app.registry  # type: ignore[attr-defined]
        base = KIND_NAMES.get(table["kind"]) or \
            re.sub(r"[^a-z0-9]+", "-", Path(typed).stem.lower()).strip("-") or "dataset"
        name, n = base, 1
        while name in registry.datasets:
            n += 1
            name = f"{base}-{n}"
        if self.app.edit_registry(lambda raw: raw.setdefault("datasets", {}).__setitem__(name, table)):  # type: ignore[attr-defined]
            self.app.notify(f"added dataset {name} ({table['kind']}: {dataset_files(table)})", timeout=8)
            self.reload()
            datasets = self.query_one("#datasets-table", DataTable)
            if name in datasets.rows:  # the new dataset is the one to look at, and the arrows move in the list
                datasets.move_cursor(row=datasets.get_row_index(name))
            datasets.focus()
