"""The Galaxy Zoo decision tree: questions, their answers, which answer leads to which question, and where
a catalogue keeps each answer's fraction (and count). Torch-free: the catalogue loaders, the worker's
task and the reports share it.

Two ways catalogues write fractions: per question (GZ2's tables: a question's answers sum to 1 among the
volunteers who reached it) or cumulative (the Kaggle challenge: an answer's value is the share of *all*
volunteers, so a question's answers sum to the value of the answer that leads to it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from galaxy_tui.errors import GalaxyError


@dataclass(frozen=True)
class Question:
    key: str                                 # what `questions = [...]` names: "Q2", "t02_edgeon", "edge_on"
    text: str
    answers: tuple[str, ...]
    columns: tuple[str, ...]                 # the catalogue frame's column per answer (the target)
    parent: tuple[str, int] | None = None    # (question key, answer index) that leads here; None: asked of all
    count_columns: tuple[str, ...] = ()      # the frame's vote count per answer, where the catalogue has them


RuleAnswers = tuple[tuple[str, str, int], ...]  # (labels.VOTE_COLUMNS name, question key, answer index)


@dataclass(frozen=True)
class VoteTree:
    questions: tuple[Question, ...]          # parents before children
    cumulative: bool = False
    rule: RuleAnswers = ()                   # the answers the high-confidence labelling rule reads

    @property
    def outputs(self) -> int:
        return sum(len(q.answers) for q in self.questions)

    @property
    def columns(self) -> list[str]:
        return [c for q in self.questions for c in q.columns]

    @property
    def has_counts(self) -> bool:
        return all(q.count_columns for q in self.questions)

    @property
    def slices(self) -> list[tuple[int, int]]:
        """Each question's (start, end) among the outputs."""
        spans, start = [], 0
        for q in self.questions:
            spans.append((start, start + len(q.answers)))
            start += len(q.answers)
        return spans

    def index(self, key: str) -> int:
        return [q.key for q in self.questions].index(key)

    def parent_output(self, question: Question) -> int | None:
        """The output index of the answer that leads to this question (None: a root question)."""
        if question.parent is None:
            return None
        parent_key, answer = question.parent
        return self.slices[self.index(parent_key)][0] + answer

    def answer_labels(self) -> list[str]:
        return [f"{q.key} {a}" for q in self.questions for a in q.answers]

    def select(self, keys: list[str] | tuple[str, ...], where: str) -> VoteTree:
        """The tree limited to these questions. A cumulative tree keeps each chosen question's ancestors
        (its outputs are products down the tree); a per-question tree keeps exactly what was chosen."""
        if not keys:
            return self
        known = [q.key for q in self.questions]
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise GalaxyError(f"{where}: questions = {list(keys)!r} names {', '.join(map(repr, unknown))}, which this "
                              f"dataset does not have; its questions: {', '.join(known)}.")
        chosen = set(keys)
        if self.cumulative:
            missing = []
            for key in keys:
                parent = self.questions[self.index(key)].parent
                while parent is not None:
                    if parent[0] not in chosen and parent[0] not in missing:
                        missing.append(parent[0])
                    parent = self.questions[self.index(parent[0])].parent
            if missing:
                raise GalaxyError(f"{where}: questions = {list(keys)!r} leaves out {', '.join(missing)}, which lead "
                                  f"to them; this dataset's fractions are cumulative (products down the tree), so "
                                  f"add {', '.join(missing)} to questions.")
        kept = tuple(q if q.parent is None or q.parent[0] in chosen or self.cumulative else replace(q, parent=None)
                     for q in self.questions if q.key in chosen)
        return VoteTree(kept, self.cumulative, self.rule)

    def reach(self, targets: np.ndarray) -> np.ndarray:
        """(n, questions): the share of a galaxy's volunteers who reached each question, from its own fractions."""
        reach = np.ones((len(targets), len(self.questions)), dtype=np.float64)
        for i, q in enumerate(self.questions):
            parent = self.parent_output(q)
            if parent is None:
                continue
            if self.cumulative:
                reach[:, i] = targets[:, parent]
            else:
                reach[:, i] = reach[:, self.index(q.parent[0])] * targets[:, parent]
        return np.nan_to_num(reach, nan=0.0)

    def conditional(self, outputs: np.ndarray) -> np.ndarray:
        """Per-question fractions (each question's answers sum to 1) from the tree's outputs."""
        result = np.array(outputs, dtype=np.float64, copy=True)
        for start, end in self.slices:
            total = result[:, start:end].sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                result[:, start:end] = np.where(total > 0, result[:, start:end] / total, np.nan)
        return result

    def rule_fractions(self, outputs: np.ndarray) -> dict[str, np.ndarray] | None:
        """The labelling rule's per-question fractions (labels.VOTE_COLUMNS but the count) from the tree's
        outputs, or None when the tree lacks a question the rule reads."""
        keys = [q.key for q in self.questions]
        if not self.rule or any(question not in keys for _, question, _ in self.rule):
            return None
        conditional = self.conditional(outputs)
        return {name: conditional[:, self.slices[keys.index(question)][0] + answer].astype(np.float32)
                for name, question, answer in self.rule}


def tree_table(tree: VoteTree) -> dict[str, object]:
    """The tree as a TOML table (a run's config.toml freezes the questions it was trained on)."""
    def question(q: Question) -> dict[str, object]:
        table: dict[str, object] = {"key": q.key, "text": q.text, "answers": list(q.answers),
                                    "columns": list(q.columns), "count_columns": list(q.count_columns)}
        if q.parent is not None:  # TOML has no null: a root question has no parent key
            table["parent"] = [q.parent[0], q.parent[1]]
        return table
    return {"cumulative": tree.cumulative, "questions": [question(q) for q in tree.questions],
            "rule": [list(r) for r in tree.rule]}


def tree_from_table(table: dict) -> VoteTree:
    """The tree `tree_table` wrote; a GalaxyError when the table is not one."""
    try:
        questions = tuple(Question(str(q["key"]), str(q["text"]), tuple(map(str, q["answers"])),
                                   tuple(map(str, q["columns"])),
                                   (str(q["parent"][0]), int(q["parent"][1])) if "parent" in q else None,
                                   tuple(map(str, q.get("count_columns", ())))) for q in table["questions"])
        rule = tuple((str(r[0]), str(r[1]), int(r[2])) for r in table.get("rule", ()))
        return VoteTree(questions, bool(table.get("cumulative", False)), rule)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise GalaxyError(f"the frozen decision tree is damaged ({type(exc).__name__}: {exc}).") from None


def answer_errors(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float] | None:
    """(RMSE, MAE) over the answers the catalogue has (NaN answers left out); None when it has none."""
    known = np.isfinite(truth)
    if not known.any():
        return None
    difference = predicted[known] - truth[known]
    return float(np.sqrt(np.mean(difference ** 2))), float(np.mean(np.abs(difference)))


QuestionSpec = tuple[str, str, tuple[str, ...], tuple[str, int] | None]


def _tree(spec: list[QuestionSpec], column: Callable[[str, int, str], str]) -> tuple[Question, ...]:
    return tuple(Question(key, text, answers, tuple(column(key, i, a) for i, a in enumerate(answers)), parent)
                 for key, text, answers, parent in spec)


# The Kaggle challenge numbers questions Class1..Class11 and answers 1..n (Willett et al. 2013, table 2).
KAGGLE_QUESTIONS: list[QuestionSpec] = [
    ("Q1", "smooth or features", ("smooth", "features or disk", "star or artifact"), None),
    ("Q2", "edge-on", ("yes", "no"), ("Q1", 1)),
    ("Q3", "bar", ("bar", "no bar"), ("Q2", 1)),
    ("Q4", "spiral", ("spiral", "no spiral"), ("Q2", 1)),
    ("Q5", "bulge prominence", ("no bulge", "just noticeable", "obvious", "dominant"), ("Q2", 1)),
    ("Q6", "anything odd", ("yes", "no"), None),
    ("Q7", "how rounded", ("completely round", "in between", "cigar-shaped"), ("Q1", 0)),
    ("Q8", "odd feature", ("ring", "lens or arc", "disturbed", "irregular", "other", "merger", "dust lane"),
     ("Q6", 0)),
    ("Q9", "bulge shape", ("rounded", "boxy", "no bulge"), ("Q2", 0)),
    ("Q10", "arms winding", ("tight", "medium", "loose"), ("Q4", 0)),
    ("Q11", "arms number", ("1", "2", "3", "4", "more than 4", "can't tell"), ("Q4", 0)),
]
KAGGLE_TREE = VoteTree(_tree(KAGGLE_QUESTIONS, lambda key, i, _: f"Class{key[1:]}.{i + 1}"), cumulative=True,
                       rule=(("smooth", "Q1", 0), ("disk", "Q1", 1), ("artifact", "Q1", 2), ("edgeon_yes", "Q2", 0),
                             ("edgeon_no", "Q2", 1), ("spiral", "Q4", 0)))

# GZ2 (Hart et al. 2016): the same tree, its columns named t<NN>_<question>_a<NN>_<answer>_<family>.
HART16_QUESTIONS: list[QuestionSpec] = [
    ("t01_smooth_or_features", "smooth or features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact"),
     None),
    ("t02_edgeon", "edge-on", ("a04_yes", "a05_no"), ("t01_smooth_or_features", 1)),
    ("t03_bar", "bar", ("a06_bar", "a07_no_bar"), ("t02_edgeon", 1)),
    ("t04_spiral", "spiral", ("a08_spiral", "a09_no_spiral"), ("t02_edgeon", 1)),
    ("t05_bulge_prominence", "bulge prominence", ("a10_no_bulge", "a11_just_noticeable", "a12_obvious",
                                                  "a13_dominant"), ("t02_edgeon", 1)),
    ("t06_odd", "anything odd", ("a14_yes", "a15_no"), None),
    ("t07_rounded", "how rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped"),
     ("t01_smooth_or_features", 0)),
    ("t08_odd_feature", "odd feature", ("a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular", "a23_other",
                                        "a24_merger", "a38_dust_lane"), ("t06_odd", 0)),
    ("t09_bulge_shape", "bulge shape", ("a25_rounded", "a26_boxy", "a27_no_bulge"), ("t02_edgeon", 0)),
    ("t10_arms_winding", "arms winding", ("a28_tight", "a29_medium", "a30_loose"), ("t04_spiral", 0)),
    ("t11_arms_number", "arms number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell"),
     ("t04_spiral", 0)),
]

HART16_RULE: RuleAnswers = (("smooth", "t01_smooth_or_features", 0), ("disk", "t01_smooth_or_features", 1),
                            ("artifact", "t01_smooth_or_features", 2), ("edgeon_yes", "t02_edgeon", 0),
                            ("edgeon_no", "t02_edgeon", 1), ("spiral", "t04_spiral", 0))


def hart16_tree(family: str, header: set[str]) -> tuple[VoteTree, dict[str, str]]:
    """The questions whose answer columns of this fraction family the catalogue has, with their `_count`
    columns when every answer has one. Returns the tree (frame columns named after the answers, without the
    family suffix) and {catalogue column: frame column} to read."""
    return _tree_in_header(HART16_QUESTIONS, HART16_RULE, family, header, lambda name: f"{name}_count",
                           lambda answer: answer.split("_", 1)[1])


def _tree_in_header(spec: list[QuestionSpec], rule: RuleAnswers, family: str, header: set[str],
                    count_column: Callable[[str], str], answer_name: Callable[[str], str]
                    ) -> tuple[VoteTree, dict[str, str]]:
    """The tree of the questions whose `{question}_{answer}_{family}` columns the table has (frame columns
    `{question}_{answer}`), with each answer's count (frame `{question}_{answer}_count`) where every answer of the
    question has one, and {catalogue column: frame column} to read."""
    questions, read = [], {}
    for key, text, answers, parent in spec:
        names = [f"{key}_{a}" for a in answers]
        if not all(f"{n}_{family}" in header for n in names):
            continue
        has_counts = all(count_column(n) in header for n in names)
        read.update({f"{n}_{family}": n for n in names})
        read.update({count_column(n): f"{n}_count" for n in names} if has_counts else {})
        kept_parent = parent if parent is None or any(q.key == parent[0] for q in questions) else None
        questions.append(Question(key, text, tuple(map(answer_name, answers)), tuple(names), kept_parent,
                                  tuple(f"{n}_count" for n in names) if has_counts else ()))
    return VoteTree(tuple(questions), rule=rule), read


# Galaxy Zoo DECaLS, GZD-5 (Walmsley et al. 2022): columns {question}_{answer} (counts), _fraction, _debiased.
DECALS5_QUESTIONS: list[QuestionSpec] = [
    ("smooth-or-featured", "smooth or featured", ("smooth", "featured-or-disk", "artifact"), None),
    ("disk-edge-on", "edge-on disk", ("yes", "no"), ("smooth-or-featured", 1)),
    ("has-spiral-arms", "spiral arms", ("yes", "no"), ("disk-edge-on", 1)),
    ("bar", "bar", ("strong", "weak", "no"), ("disk-edge-on", 1)),
    ("bulge-size", "bulge size", ("dominant", "large", "moderate", "small", "none"), ("disk-edge-on", 1)),
    ("how-rounded", "how rounded", ("round", "in-between", "cigar-shaped"), ("smooth-or-featured", 0)),
    ("edge-on-bulge", "edge-on bulge", ("boxy", "none", "rounded"), ("disk-edge-on", 0)),
    ("spiral-winding", "spiral winding", ("tight", "medium", "loose"), ("has-spiral-arms", 0)),
    ("spiral-arm-count", "spiral arm count", ("1", "2", "3", "4", "more-than-4", "cant-tell"),
     ("has-spiral-arms", 0)),
    ("merging", "merging", ("none", "minor-disturbance", "major-disturbance", "merger"), None),
]
DECALS5_RULE: RuleAnswers = (("smooth", "smooth-or-featured", 0), ("disk", "smooth-or-featured", 1),
                             ("artifact", "smooth-or-featured", 2), ("edgeon_yes", "disk-edge-on", 0),
                             ("edgeon_no", "disk-edge-on", 1), ("spiral", "has-spiral-arms", 0))


def decals5_tree(family: str, header: set[str]) -> tuple[VoteTree, dict[str, str]]:
    """As hart16_tree, for a GZD-5 table (whose bare `{question}_{answer}` columns are the counts)."""
    return _tree_in_header(DECALS5_QUESTIONS, DECALS5_RULE, family, header, lambda name: name, lambda answer: answer)
