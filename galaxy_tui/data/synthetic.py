"""The embedded demo dataset: procedurally rendered galaxies with simulated Galaxy Zoo votes.

Each galaxy is drawn from physical profiles (Sersic bulge, exponential disc, logarithmic spiral
arms, inclination, dust lane), convolved with a Gaussian PSF, put on a noisy sky with field stars
and shown through an asinh stretch like an SDSS colour cut-out. Its vote fractions follow its true
type with a per-galaxy "clarity": small, faint galaxies get ambiguous votes, so raising the
threshold keeps the clearer ones, as with real Galaxy Zoo data. Everything is deterministic from
the seed: the catalogue from one generator, each image from its own (seed, index) generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from galaxy_tui.data.catalog import Dataset, fingerprint_of
from galaxy_tui.data.labels import VOTE_CLASSES
from galaxy_tui.data.vote_tree import Question, VoteTree

TYPES = ("elliptical", "spiral", "edge_on", "artifact")
TYPE_WEIGHTS = (0.34, 0.34, 0.27, 0.05)
RARE_TYPES = ("ring", "merger")  # planted on request (`rare`), for measuring how the odd ones are found
ALL_TYPES = TYPES + RARE_TYPES

_COLOURS = {  # relative flux in (R, G, B) like gri composites
    "old": np.array([1.0, 0.82, 0.58], dtype=np.float32),
    "young": np.array([0.62, 0.78, 1.0], dtype=np.float32),
    "mixed": np.array([0.95, 0.88, 0.78], dtype=np.float32),
}


def synthetic_catalogue(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kind = rng.choice(len(TYPES), size=count, p=TYPE_WEIGHTS)
    clarity = rng.beta(4.0, 1.6, size=count).astype(np.float32)
    size = rng.uniform(0.04, 0.13, size=count).astype(np.float32) * (0.5 + 0.5 * clarity)
    brightness = (0.35 + 0.65 * clarity * rng.uniform(0.7, 1.0, size=count)).astype(np.float32)

    def strong(k: np.ndarray) -> np.ndarray:  # a vote fraction for a clear feature
        return np.clip(0.5 + 0.5 * k + rng.normal(0, 0.04, count), 0.0, 1.0).astype(np.float32)

    def weak() -> np.ndarray:  # a vote fraction for an absent feature
        return np.clip(rng.beta(1.2, 8.0, count), 0.0, 1.0).astype(np.float32)

    is_ = {name: kind == i for i, name in enumerate(TYPES)}
    artifact = np.where(is_["artifact"], strong(clarity), rng.uniform(0.0, 0.06, count)).astype(np.float32)
    feature_share = np.where(is_["elliptical"], weak(), strong(clarity))
    remaining = 1.0 - artifact
    disk = np.where(is_["artifact"], (1 - artifact) * 0.5, remaining * feature_share).astype(np.float32)
    smooth = (remaining - disk).clip(0.0, 1.0).astype(np.float32)
    edge_clarity = np.clip(clarity + rng.normal(0, 0.08, count), 0, 1)
    edgeon_yes = np.where(is_["edge_on"], strong(edge_clarity), weak()).astype(np.float32)
    spiral_clarity = np.clip(clarity + rng.normal(0, 0.08, count), 0, 1)
    spiral = np.where(is_["spiral"], strong(spiral_clarity), weak()).astype(np.float32)
    total = rng.poisson(38, count).clip(1)
    few_votes = rng.random(count) < 0.04
    total[few_votes] = rng.integers(3, 10, size=int(few_votes.sum()))
    return pd.DataFrame({
        "id": [f"syn{seed}-{i:06d}" for i in range(count)],
        "ref": np.arange(count),
        "true_type": np.array(TYPES)[kind],
        "smooth": smooth,
        "disk": disk,
        "artifact": artifact,
        "edgeon_yes": edgeon_yes,
        "edgeon_no": (1.0 - edgeon_yes).astype(np.float32),
        "spiral": spiral,
        "total_classifications": total.astype(np.int32),
        "_kind": kind,
        "_size": size,
        "_brightness": brightness,
    })


VOTE_COLUMNS = ("smooth", "disk", "artifact", "edgeon_yes", "edgeon_no", "spiral")


def plant(frame: pd.DataFrame, seed: int, mislabel: float, rare: float) -> pd.DataFrame:
    """Planted truth, marked in `_planted`: a `rare` share of the galaxies drawn as rings or mergers (their
    votes stay a disc's or an elliptical's: volunteers answer the top question as usual), and a `mislabel` share
    of the others carrying the volunteers' answers of a galaxy of another type (so the rule gives them that
    type's class while the image shows their own). From a generator of its own: the rest stays as unplanted."""
    frame = frame.copy()
    rng = np.random.default_rng([seed, 99])
    kind = frame["_kind"].to_numpy().copy()
    planted = np.full(len(frame), "", dtype=object)
    galaxies = np.flatnonzero(kind != TYPES.index("artifact"))
    rare_rows = galaxies[rng.random(len(galaxies)) < rare]
    kind[rare_rows] = len(TYPES) + rng.integers(0, len(RARE_TYPES), len(rare_rows))
    planted[rare_rows] = "rare"
    candidates = np.setdiff1d(galaxies, rare_rows)
    flipped = candidates[rng.random(len(candidates)) < mislabel]
    donors = candidates[rng.integers(0, len(candidates), len(flipped))]
    for _ in range(100):  # draw again where the donor is of the same type
        same = kind[donors] == kind[flipped]
        if not same.any():
            break
        donors[same] = candidates[rng.integers(0, len(candidates), int(same.sum()))]
    for column in VOTE_COLUMNS:
        values = frame[column].to_numpy().copy()
        values[flipped] = values[donors]
        frame[column] = values
    planted[flipped] = "mislabelled"
    frame["_kind"] = kind
    frame["true_type"] = np.array(ALL_TYPES)[kind]
    frame["_planted"] = planted
    return frame


def _frame_coordinates(n: int, centre: tuple[float, float], angle: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel grid in the galaxy's frame: x along the major axis, y de-projected by axis ratio q."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    return dx * c + dy * s, (-dx * s + dy * c) / q


def _sersic(r: np.ndarray, r_e: float, n: float) -> np.ndarray:
    b = 2.0 * n - 1.0 / 3.0
    return np.exp(-b * ((r / r_e + 1e-6) ** (1.0 / n) - 1.0))


@dataclass(frozen=True)
class Shape:
    """A galaxy's geometry, drawn from its own generator before anything else: the catalogue reads the
    axis ratio and the arm count (what the volunteers answer), the renderer draws from the same values."""

    centre: tuple[float, float]
    angle: float
    q: float = 1.0             # axis ratio (elliptical, spiral) or thickness (edge-on)
    sersic_n: float = 4.0
    pitch: float = 0.0
    arms: int = 0
    winding: int = 1
    contrast: float = 1.0
    dust_lane: bool = False
    bulge: bool = False


def draw_shape(kind: int, n: int, rng: np.random.Generator) -> Shape:
    centre = (n / 2 + rng.normal(0, n * 0.025), n / 2 + rng.normal(0, n * 0.025))
    angle = rng.uniform(0, np.pi)
    name = ALL_TYPES[kind]
    if name == "elliptical":
        return Shape(centre, angle, q=rng.uniform(0.4, 1.0), sersic_n=rng.uniform(3.0, 5.0))
    if name == "spiral":
        q = rng.uniform(0.3, 1.0)  # down to steep inclinations, where arms fade into a lens shape
        pitch = np.deg2rad(rng.uniform(12, 28))
        arms = int(rng.choice([2, 2, 3]))
        winding = int(rng.choice([-1, 1]))
        return Shape(centre, angle, q=q, pitch=pitch, arms=arms, winding=winding,
                     contrast=rng.uniform(0.5, 1.6))  # flocculent to grand design
    if name == "edge_on":
        q = rng.uniform(0.07, 0.16)
        dust = bool(rng.random() < 0.5)
        return Shape(centre, angle, q=q, dust_lane=dust, bulge=bool(rng.random() < 0.6))
    if name == "ring":
        return Shape(centre, angle, q=rng.uniform(0.5, 1.0))
    if name == "merger":
        return Shape(centre, angle, q=rng.uniform(0.6, 1.0), pitch=rng.uniform(1.5, 2.5))  # pitch: separation
    return Shape(centre, angle)


def _rare_flux(name: str, shape: Shape, r_scale: float, n: int) -> np.ndarray:
    """A ring galaxy (a young ring around an old core, empty between) or a merger (two galaxies close
    together, a tidal tail curling from one of them)."""
    x, y = _frame_coordinates(n, shape.centre, shape.angle, shape.q)
    r = np.hypot(x, y)
    if name == "ring":
        ring = np.exp(-0.5 * ((r - 1.8 * r_scale) / (0.25 * r_scale)) ** 2)
        return ring[..., None] * _COLOURS["young"] * 1.2 + \
            _sersic(r, 0.3 * r_scale, 2.0)[..., None] * _COLOURS["old"] * 1.4
    offset = shape.pitch * r_scale
    first = _sersic(np.hypot(x + offset / 2, y), 0.7 * r_scale, 3.0)
    second = _sersic(np.hypot(x - offset / 2, y / 0.8), 0.55 * r_scale, 3.0)
    theta = np.arctan2(y, x - offset / 2)
    tail = np.exp(-0.5 * ((r - 1.6 * r_scale - 0.4 * r_scale * theta) / (0.2 * r_scale)) ** 2) * (theta > 0)
    return (first + 0.8 * second)[..., None] * _COLOURS["old"] * 1.4 + (0.5 * tail)[..., None] * _COLOURS["mixed"]


def render_galaxy(kind: int, size_frac: float, brightness: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """One n x n RGB image (uint8) of a galaxy of the given type on a noisy sky."""
    shape = draw_shape(kind, n, rng)
    flux = np.zeros((n, n, 3), dtype=np.float32)
    centre, angle = shape.centre, shape.angle
    r_scale = size_frac * n
    name = ALL_TYPES[kind]
    if name in RARE_TYPES:
        flux += _rare_flux(name, shape, r_scale, n)
    elif name == "elliptical":
        x, y = _frame_coordinates(n, centre, angle, shape.q)
        flux += _sersic(np.hypot(x, y), r_scale, shape.sersic_n)[..., None] * _COLOURS["old"] * 1.6
    elif name == "spiral":
        x, y = _frame_coordinates(n, centre, angle, shape.q)
        r, theta = np.hypot(x, y), np.arctan2(y, x)
        r_d = r_scale * 1.1
        phase = shape.arms * (theta - np.log(r / r_d + 1e-3) / np.tan(shape.pitch)) * shape.winding
        arm_pattern = (0.5 * (1 + np.cos(phase))) ** 3
        disc = np.exp(-r / r_d)
        flux += (disc * (0.25 + shape.contrast * arm_pattern) * (r > 0.35 * r_d))[..., None] * _COLOURS["young"]
        flux += _sersic(r, 0.35 * r_d, 2.0)[..., None] * _COLOURS["old"] * 1.2
    elif name == "edge_on":
        x, y = _frame_coordinates(n, centre, angle, 1.0)
        r_d = r_scale * 1.25
        height = max(shape.q * r_d, 0.5)
        disc = np.exp(-np.abs(x) / r_d) / np.cosh(y / height) ** 2
        if shape.dust_lane:
            disc = disc * (1 - 0.6 * np.exp(-(y / (0.35 * height)) ** 2))
        flux += disc[..., None] * _COLOURS["mixed"] * 1.3
        if shape.bulge:
            flux += _sersic(np.hypot(x, y / 0.7), 0.3 * r_d, 2.0)[..., None] * _COLOURS["old"] * 0.8
    else:  # artifact: a bright saturated star with diffraction spikes
        x, y = _frame_coordinates(n, centre, angle, 1.0)
        core = np.exp(-(x**2 + y**2) / (2 * (0.02 * n) ** 2))
        spikes = np.exp(-np.abs(y) / 0.6) * np.exp(-np.abs(x) / (0.25 * n)) + \
            np.exp(-np.abs(x) / 0.6) * np.exp(-np.abs(y) / (0.25 * n))
        flux += (6 * core + 0.8 * spikes)[..., None] * np.array([1.0, 0.95, 0.9], dtype=np.float32)
    flux *= brightness
    for _ in range(rng.poisson(1.5)):  # field stars
        sx, sy = rng.uniform(0, n, 2)
        star = np.zeros((n, n), dtype=np.float32)
        star[int(sy), int(sx)] = rng.lognormal(0.5, 1.0) * 4
        colour = rng.choice(list(_COLOURS.values()))
        flux += star[..., None] * colour
    from scipy.ndimage import gaussian_filter  # here: the demo's counts (no images) come without scipy's import

    psf = rng.uniform(0.6, 1.2) * n / 64
    flux = gaussian_filter(flux, sigma=(psf, psf, 0))
    sky_noise = rng.uniform(0.012, 0.045)
    flux += rng.normal(0, sky_noise, flux.shape).astype(np.float32)
    flux += rng.normal(0, 1, flux.shape).astype(np.float32) * np.sqrt(np.clip(flux, 0, None)) * 0.04
    display = np.arcsinh(np.clip(flux, 0, None) / 0.08) / np.arcsinh(1.0 / 0.08)
    return (np.clip(display, 0, 1) * 255).astype(np.uint8)


def _question(key: str, text: str, answers: dict[str, str], parent: tuple[str, int] | None) -> Question:
    return Question(key, text, tuple(answers), tuple(answers.values()), parent,
                    tuple(f"{column}_count" for column in answers.values()))


# What the volunteers are asked of the demo's galaxies: only what its images show.
SYNTHETIC_TREE = VoteTree((
    _question("smooth_or_features", "smooth or features",
              {"smooth": "smooth", "features": "disk", "artifact": "artifact"}, None),
    _question("edge_on", "edge-on", {"yes": "edgeon_yes", "no": "edgeon_no"}, ("smooth_or_features", 1)),
    _question("spiral", "spiral arms", {"yes": "spiral", "no": "spiral_no"}, ("edge_on", 1)),
    _question("arms", "how many arms", {"two": "arms_two", "three": "arms_three"}, ("spiral", 0)),
    _question("rounded", "how rounded", {"round": "rounded_round", "in between": "rounded_in_between",
                                         "cigar-shaped": "rounded_cigar"}, ("smooth_or_features", 0)),
), rule=(("smooth", "smooth_or_features", 0), ("disk", "smooth_or_features", 1),
         ("artifact", "smooth_or_features", 2), ("edgeon_yes", "edge_on", 0), ("edgeon_no", "edge_on", 1),
         ("spiral", "spiral", 0)))

# How rounded volunteers call a galaxy that is not an elliptical (whose axis ratio decides).
_ROUNDED_BY_TYPE = {"spiral": (0.3, 0.5, 0.2), "edge_on": (0.1, 0.3, 0.6), "artifact": (0.6, 0.3, 0.1),
                    "ring": (0.5, 0.4, 0.1), "merger": (0.3, 0.5, 0.2)}


def synthetic_answers(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every answer of SYNTHETIC_TREE (fraction and vote count) for these catalogue rows. The arm count and
    the axis ratio come from each galaxy's drawn shape, so they are computed here, for the rows asked only."""
    kinds = frame["_kind"].to_numpy()
    answers = {column: frame[column].to_numpy(dtype=np.float64)
               for column in ("smooth", "disk", "artifact", "edgeon_yes", "edgeon_no", "spiral")}
    answers["spiral_no"] = 1.0 - answers["spiral"]
    two, rounded = np.empty(len(frame)), np.empty((len(frame), 3))
    for row, (index, kind) in enumerate(zip(frame["ref"].to_numpy(), kinds)):
        shape = draw_shape(int(kind), 64, np.random.default_rng([seed, int(index)]))
        noise = np.random.default_rng([seed, int(index), 1]).normal(0, 0.04, 4)
        name = ALL_TYPES[int(kind)]
        if name == "spiral":  # arms are easier to count face-on and in a clear image
            seen = 0.5 + 0.45 * np.clip(2 * answers["spiral"][row] - 1, 0, 1) * shape.q
            two[row] = seen if shape.arms == 2 else 1 - seen
        else:
            two[row] = 0.5
        if name == "elliptical":
            clarity = np.clip(2 * answers["smooth"][row] - 1, 0, 1)
            closeness = np.exp(-0.5 * ((shape.q - np.array([0.9, 0.7, 0.5])) / 0.1) ** 2)
            rounded[row] = clarity * closeness / closeness.sum() + (1 - clarity) / 3
        else:
            rounded[row] = _ROUNDED_BY_TYPE[name]
        two[row] += noise[0]
        rounded[row] = np.clip(rounded[row] + noise[1:], 0.01, None)
    answers["arms_two"] = np.clip(two, 0, 1)
    answers["arms_three"] = 1 - answers["arms_two"]
    rounded /= rounded.sum(axis=1, keepdims=True)
    for i, column in enumerate(("rounded_round", "rounded_in_between", "rounded_cigar")):
        answers[column] = rounded[:, i]
    result = pd.DataFrame(answers, index=frame.index).astype(np.float32)
    targets = result[SYNTHETIC_TREE.columns].to_numpy(dtype=np.float64)
    reached = SYNTHETIC_TREE.reach(targets) * frame["total_classifications"].to_numpy()[:, None]
    for i, question in enumerate(SYNTHETIC_TREE.questions):
        for column, count in zip(question.columns, question.count_columns):
            result[count] = np.round(reached[:, i] * result[column].to_numpy()).astype(np.float32)
    return result


class SyntheticImages:
    def __init__(self, frame: pd.DataFrame, size: int, seed: int):
        self.kind = frame["_kind"].to_numpy()
        self.size_frac = frame["_size"].to_numpy()
        self.brightness = frame["_brightness"].to_numpy()
        self.size = size
        self.seed = seed

    def __call__(self, index: int) -> np.ndarray:
        i = int(index)
        rng = np.random.default_rng([self.seed, i])
        return render_galaxy(int(self.kind[i]), float(self.size_frac[i]), float(self.brightness[i]), self.size, rng)


def load_synthetic(name: str, count: int = 3000, size: int = 64, seed: int = 0, mislabel: float = 0.0,
                   rare: float = 0.0) -> Dataset:
    frame = synthetic_catalogue(count, seed)
    planted = (mislabel, rare) != (0.0, 0.0)
    if planted:
        frame = plant(frame, seed, mislabel, rare)
    return Dataset(
        name=name,
        kind="synthetic",
        frame=frame,
        classes=VOTE_CLASSES,
        read_image=SyntheticImages(frame, size, seed),
        fingerprint=fingerprint_of("synthetic-v2", count, size, seed, *((mislabel, rare) if planted else ())),
        location=f"built-in ({count} galaxies, {size}px, seed {seed}"
                 + (f", {mislabel:.1%} mislabelled and {rare:.1%} rare planted" if planted else "") + ")",
        tree=SYNTHETIC_TREE,
        answer_source=lambda rows: synthetic_answers(rows, seed),
    )


def contact_sheet(path: str, per_type: int = 10, size: int = 64, seed: int = 0) -> None:
    """A PNG with one row per type, to look at what the renderer makes."""
    from PIL import Image
    dataset = load_synthetic("sheet", 60 * per_type, size, seed)
    kinds = dataset.frame["_kind"].to_numpy()
    rows = [np.concatenate([dataset.read_image(i) for i in np.flatnonzero(kinds == k)[:per_type]], axis=1)
            for k in range(len(TYPES))]
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).save(path, optimize=True)


if __name__ == "__main__":
    import sys
    contact_sheet(sys.argv[1] if len(sys.argv) > 1 else "synthetic-galaxies.png")
