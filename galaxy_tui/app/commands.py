"""One registry of commands: it feeds the key bindings, the command palette and the help screen."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    name: str
    key: str
    description: str
    action: str
    pane: str | None = None   # None: everywhere; else the pane id it belongs to
    show: bool = True         # shown in the footer
    footer_group: str = ""    # keys of one group share one footer label ("+- Threshold ±0.01")


COMMANDS: tuple[Command, ...] = (
    # the tabs already say "1 Datasets" ... "4 Results": the footer keeps its room for the pane's own keys
    Command("Datasets", "1", "Show the datasets pane", "app.show_pane('datasets')", show=False),
    Command("Experiments", "2", "Show the experiments pane", "app.show_pane('experiments')", show=False),
    Command("Monitor", "3", "Show the live run (or the one chosen in the runs list)", "app.show_pane('monitor')",
            show=False),
    Command("Results", "4", "Show the results of the newest finished run (or the one chosen)",
            "app.show_pane('results')", show=False),
    Command("Runs", "r", "Show or hide the runs list and focus it", "app.toggle_runs"),
    Command("Colour / grey", "g", "Draw galaxies in colour or in the grey ramp (grey is the default where the "
            "terminal has only 256 colours)", "app.toggle_grey"),
    Command("Help", "question_mark", "Keys of the focused pane", "app.help", show=True),
    Command("Doctor", "", "The last `galaxy-tui doctor` report of this box: GPUs, precision, probe, throughput, "
            "OOM recovery, several devices, telemetry, a detached run", "app.doctor", show=False),
    Command("Quit", "q", "Quit (running runs keep going)", "app.quit_app"),
    Command("Threshold +0.01", "plus", "Raise the label threshold by 0.01", "threshold(0.01)", "datasets",
            footer_group="Threshold ±0.01"),
    Command("Threshold -0.01", "minus", "Lower the label threshold by 0.01", "threshold(-0.01)", "datasets",
            footer_group="Threshold ±0.01"),
    Command("Threshold +0.05", "right_square_bracket", "Raise the label threshold by 0.05", "threshold(0.05)",
            "datasets", show=False),
    Command("Threshold -0.05", "left_square_bracket", "Lower the label threshold by 0.05", "threshold(-0.05)",
            "datasets", show=False),
    Command("Type threshold", "t", "Type a threshold value", "type_threshold", "datasets"),
    Command("Min votes +1", "m", "Raise min_classifications by 1", "min_votes(1)", "datasets", show=False),
    Command("Min votes -1", "M", "Lower min_classifications by 1", "min_votes(-1)", "datasets", show=False),
    Command("Max artifact +0.05", "a", "Raise max_artifact by 0.05", "max_artifact(0.05)", "datasets", show=False),
    Command("Max artifact -0.05", "A", "Lower max_artifact by 0.05", "max_artifact(-0.05)", "datasets", show=False),
    Command("Labelling of next experiment", "e", "Edit the labelling of the next experiment using this dataset",
            "next_experiment", "datasets", show=False),
    Command("Add dataset", "n", "Add a dataset by path (kind detected)", "add_dataset", "datasets"),
    Command("Gallery", "v", "The dataset's labelled galaxies class by class, as many as fit; Enter opens one large",
            "gallery", "datasets"),
    Command("Fetch", "f", "Download a public dataset in the background (checked, unpacked, registered); its "
            "progress shows under the list, also after a restart", "fetch", "datasets"),
    Command("Open sample", "enter", "Open the selected sample galaxy large (Tab to the samples; arrows step)",
            "open_sample", "datasets", show=False),
    Command("Launch", "l", "Launch the selected experiment", "launch", "experiments"),
    Command("Edit experiment", "e", "Edit the selected experiment", "edit", "experiments"),
    Command("New experiment", "n", "Create an experiment: a blank form (every key), or a recipe that reproduces "
            "a known result (its experiments and dataset, with the figure to reach)", "new", "experiments"),
    Command("Clone experiment", "c", "A new experiment starting from the selected one's values", "clone",
            "experiments"),
    Command("Delete experiment", "delete", "Remove the selected experiment from experiments.toml (asks; its run "
            "folders stay)", "delete", "experiments"),
    Command("Stop run", "s", "Stop the monitored run (it checkpoints; resumable)", "stop", "monitor"),
    Command("Follow live", "f", "Monitor the newest live run again (after choosing a run in the runs list)",
            "follow_live", "monitor"),
    Command("Log scale", "y", "The loss plot's y axis: linear or logarithmic", "log_scale", "monitor"),
    Command("Smoothing", "e", "The training loss raw or smoothed (EMA 0.9, debiased, as TensorBoard)",
            "smoothing", "monitor"),
    Command("Worker log", "w", "The run's whole worker.log, full-screen: scroll, / search, n / N next and "
            "previous match, End follows the file", "worker_log", "monitor"),
    Command("Summary", "s", "Results: test metrics, confusion matrix, per-class scores", "results_tab('tab-summary')",
            "results"),
    Command("Mistakes", "m", "Results: the most confident mistakes, or a vote-fraction run's worst residuals "
            "(arrows move, Enter opens)", "results_tab('tab-mistakes')", "results"),
    Command("Calibration/answers", "a", "Results of a classification run: its calibration (reliability, "
            "confidence); again: accuracy by vote threshold. Of a vote-fraction run: predicted vs true for one answer "
            "and the residuals; again: the next answer",
            "answers(1)", "results"),
    Command("Previous answer", "A", "Results of a vote-fraction run: the previous answer", "answers(-1)", "results",
            show=False),
    Command("Compare", "c", "Results: compare finished runs", "results_tab('tab-compare')", "results"),
    Command("Diff", "d", "Compare: what changed from the marked run (else the one shown) to the run under the "
            "cursor", "diff", "results"),
    Command("Mark", "space", "Compare: mark or unmark the run under the cursor (the overlay, a diff, an ensemble)",
            "mark", "results", show=False),
    Command("Ensemble", "e", "Compare: combine the marked runs into an ensemble (weights asked); it joins the "
            "comparison", "ensemble", "results", show=False),
    Command("Normalise", "n", "Toggle the confusion matrix between counts and row-normalised", "toggle_normalised",
            "results"),
    Command("Predict", "p", "Classify an image file or a folder with the run shown (in the background); each galaxy "
            "opens large with its top classes", "predict", "results"),
    Command("Curation", "u", "The run's curation lists as galleries: likely wrong labels, what to label next, the "
            "odd ones out; s: the galaxies most like one; x excludes, m relabels, k takes back (the dataset's "
            "overrides file, used by the next run). A run without lists is offered the curate job",
            "curation", "results"),
    Command("Open mistake", "enter", "Open the selected mistake large (arrows step to the next)", "open_mistake",
            "results", show=False),
    Command("Filter", "slash", "Filter the runs list: text, state:finished, exp:NAME, #tag, acc>0.9 (also f1, "
            "loss, best, epoch, minutes); Escape clears", "filter", "runs"),
    Command("Mark", "space", "Mark or unmark the run for a diff or an export", "mark", "runs"),
    Command("Tags", "t", "Set the run's tags (kept in its folder)", "tags", "runs"),
    Command("Note", "n", "Write a note on the run (kept in its folder)", "note", "runs"),
    Command("Diff", "d", "What changed between two runs: the marked one and the one under the cursor, "
            "or the two marked", "diff", "runs"),
    Command("Ensemble", "e", "Combine the marked finished runs into an ensemble (weights: equal, by validation "
            "accuracy, or by inverse validation MAE or RMSE); it joins the runs list", "ensemble", "runs"),
    Command("Export CSV", "x", "The marked runs' (or this run's) curves and final metrics as a CSV in "
            "exports/", "export", "runs"),
    Command("Delete", "delete", "Delete the run's folder (asks first; a live run must be stopped first)",
            "delete", "runs"),
    Command("Sort", "o", "Sort the comparison by its next column; the mistakes by model confidence or by volunteer "
            "disagreement", "sort_next", "results"),
)


def bindings_for(pane: str | None) -> list[Binding]:
    return [Binding(c.key, c.action, c.name, show=c.show,
                    group=Binding.Group(c.footer_group, compact=True) if c.footer_group else None)
            for c in COMMANDS if c.pane == pane and c.key]  # a command without a key is in the palette only


_KEY_NAMES = {"plus": "+", "minus": "-", "question_mark": "?", "left_square_bracket": "[",
              "right_square_bracket": "]", "enter": "Enter",
              "slash": "/", "space": "space", "delete": "Delete"}


def key_label(key: str) -> str:
    """The key as a person types it."""
    return _KEY_NAMES.get(key, key) or "palette"


def commands_for(pane: str | None) -> list[Command]:
    return [c for c in COMMANDS if c.pane in (None, pane)]
