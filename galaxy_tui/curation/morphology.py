"""Non-parametric morphology of each galaxy, measured on its pixels: what astronomers use to find the odd ones a
classifier's embedding folds into its classes (a classifier learns what separates its classes; a ring or a merger
may look to it like one of them). Per galaxy, on the central object (the connected region above the sky nearest the
centre, so field stars are left out):

- concentration 5 log10(r80/r20) (Conselice 2003), and the half-light radius as a share of the frame;
- asymmetry under a half turn about the light's centre, less the sky's own (Conselice 2000);
- Gini and M20 (Lotz et al. 2004), the light's inequality and the spread of its brightest fifth;
- a ring's rise: how far the azimuthally averaged profile (in units of r50) climbs again after falling, as a
  share of its peak, in the light or in whichever colour it climbs most (a young ring around an old core is bluer
  than it: in the light alone the two can blend);
- a second nucleus: the second brightest peak as a share of the first, where the light dips between them (a core
  clipped flat at the image's white holds many equal maxima and is one peak), or where each tops a clipped core of
  its own (two saturated nuclei, no dip left between them to see);
- the colour gradient: red-to-blue inside r50 against outside.

Stars in front of the galaxy are taken out before anything is measured: against the galaxy's nucleus (the peak
nearest the frame's centre: a cut-out is centred on its galaxy, and a star may be brighter or, on a thin disc, as
extended), a peak much narrower, or one clipped flat by the display whose edge falls much more steeply, is a point
source, and its disc is filled with the light around it (a star on an elliptical made it lopsided and
double-nucleated before).

Images larger than 96 px are block-averaged first: the statistics are shares and ratios, and 96 px keeps 240,000
galaxies within minutes on a CPU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

MEASURED_BY = "5"  # raised when a statistic is measured differently: a curate job measures again what was saved
STATISTICS = ("concentration", "size", "asymmetry", "gini", "m20", "ring_rise", "second_peak", "colour_gradient")
MAX_SIDE = 96
POINT_SOURCE_WIDTH = 0.7  # a peak this much narrower than the nucleus is a star in front of the galaxy
POINT_SOURCE_FALL = 0.8  # a clipped one (wide, flat-topped) is a star if its edge falls this much more steeply
CLIPPED = 0.97  # of the image's brightest value
WHITE = 0.99  # ... in every colour: where the display clipped the light flat
PEAK_SMOOTHING = 0.7  # px: peaks are found and measured on the light smoothed less than for the segment (1 px), or
# two nuclei a PSF apart blur into one; their noise thresholds, set at 1 px, rise with the noise left (as 1 / sigma)
_SMOOTHED_NOISE_RATIO = 1.0 / PEAK_SMOOTHING
_PROFILE_EDGES = np.arange(0, 3.01, 0.25)  # in units of r50


def morphology(images: np.ndarray) -> np.ndarray:
    """(n, len(STATISTICS)) float32 for n RGB images (uint8 or float, n x H x W x 3); NaN where no central object
    stands above the sky."""
    small = _block_averaged(np.asarray(images))
    return np.array([_statistics(image) for image in small], dtype=np.float32).reshape(len(small), len(STATISTICS))


def _block_averaged(images: np.ndarray) -> np.ndarray:
    """The images block-averaged to at most MAX_SIDE: 8-bit ones by PIL's box reduction (8x numpy's mean over
    strided blocks, which cost more than the statistics themselves at 256 px), others by that mean."""
    factor = -(-max(images.shape[1:3]) // MAX_SIDE)
    if factor == 1:
        return images
    h, w = (images.shape[1] // factor) * factor, (images.shape[2] // factor) * factor
    if images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] == 3:
        return np.stack([np.asarray(Image.fromarray(image[:h, :w]).reduce(factor)) for image in images])
    blocks = images[:, :h, :w].reshape(len(images), h // factor, factor, w // factor, factor, -1)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def _central_object(smooth: np.ndarray, noise: float) -> np.ndarray | None:
    h, w = smooth.shape
    labels, _ = ndimage.label(smooth > noise)  # smoothing by 1 px halves the noise: this is 2 sigma
    window = labels[h // 2 - h // 8: h // 2 + h // 8 + 1, w // 2 - w // 8: w // 2 + w // 8 + 1]
    near_centre = window[window > 0]
    if not len(near_centre):
        return None
    return ndimage.binary_fill_holes(labels == np.bincount(near_centre).argmax())


def _statistics(image: np.ndarray) -> list[float]:
    rgb = np.asarray(image, dtype=np.float32)
    rgb = rgb / max(float(rgb.max()), 1e-6)
    lum = rgb.mean(axis=2)
    edge = np.concatenate([lum[:3].ravel(), lum[-3:].ravel(), lum[:, :3].ravel(), lum[:, -3:].ravel()])
    sky = float(np.median(edge))
    noise = 1.4826 * float(np.median(np.abs(edge - sky))) + 1e-4
    light = lum - sky
    smooth = ndimage.gaussian_filter(light, 1.0)  # the segment is found on the light smoothed by 1 px
    segment = _central_object(smooth, noise)
    if segment is None or segment.sum() < 5:
        return [np.nan] * len(STATISTICS)
    peaks = _distinct_peaks(ndimage.gaussian_filter(light, PEAK_SMOOTHING), segment,
                            noise * _SMOOTHED_NOISE_RATIO, ndimage.label(rgb.min(axis=2) >= WHITE)[0])
    centre_y, centre_x = (lum.shape[0] - 1) / 2, (lum.shape[1] - 1) / 2
    nucleus = min(peaks, key=lambda peak: np.hypot(peak.y - centre_y, peak.x - centre_x), default=None)
    stars = [peak for peak in peaks if peak is not nucleus and _is_star(peak, nucleus, rgb)]
    if stars:  # measured as if the stars in front of the galaxy were not there
        light = _without(light, stars)
        rgb = _without(rgb, stars)
    nuclei = [peak for peak in peaks if peak not in stars]
    flux = np.clip(light, 0, None) * segment
    total = float(flux.sum()) + 1e-9
    yy, xx = np.mgrid[0:lum.shape[0], 0:lum.shape[1]]
    cy, cx = float((flux * yy).sum() / total), float((flux * xx).sum() / total)
    r = np.hypot(yy - cy, xx - cx)
    r20, r50, r80 = _light_radii(flux, r, total)
    second = nuclei[1].height / nuclei[0].height if len(nuclei) > 1 else 0.0
    colours = rgb - np.median(rgb, axis=(0, 1))  # each colour above its median, for the ring and the gradient
    return [5 * np.log10(r80 / r20), float(np.log(r50 / lum.shape[0])),
            _asymmetry(light, segment, (cy, cx), noise), *_gini_m20(flux, segment, r),
            _ring_rise(light, colours, r / r50), second, _colour_gradient(colours, segment, r < r50)]


def _light_radii(flux: np.ndarray, r: np.ndarray, total: float) -> tuple[float, float, float]:
    """The radii holding 20%, 50% and 80% of the light."""
    order = np.argsort(r, axis=None)
    grown = np.cumsum(flux.ravel()[order]) / total
    radii = r.ravel()[order]
    r20, r50, r80 = (float(radii[min(int(np.searchsorted(grown, q)), len(radii) - 1)]) + 0.5 for q in (0.2, 0.5, 0.8))
    return r20, r50, r80


def _asymmetry(light: np.ndarray, segment: np.ndarray, centre: tuple[float, float], noise: float) -> float:
    """Each pixel against the one opposite it across the light's centre, less what the sky's noise alone gives."""
    yy, xx = np.mgrid[0:light.shape[0], 0:light.shape[1]]
    turned = [2 * centre[0] - yy, 2 * centre[1] - xx]
    opposite = ndimage.map_coordinates(light, turned, order=1, mode="constant")
    both = segment | (ndimage.map_coordinates(segment.astype(np.float32), turned, order=0) > 0.5)
    scale = 2 * float(np.abs(light[both]).sum()) + 1e-9
    return float(np.abs(light - opposite)[both].sum()) / scale - 2 * both.sum() * 1.128 * noise / scale


def _gini_m20(flux: np.ndarray, segment: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    values = np.sort(flux[segment])
    n = len(values)
    gini = float(((2 * np.arange(1, n + 1) - n - 1) * values).sum() / (values.mean() * n * (n - 1) + 1e-9))
    order = np.argsort(-flux[segment])
    brightest = flux[segment][order]
    moments = brightest * r[segment][order] ** 2
    fifth = np.cumsum(brightest) / brightest.sum() <= 0.2
    return gini, float(np.log10(moments[fifth].sum() / (moments.sum() + 1e-9) + 1e-9))


def _ring_rise(light: np.ndarray, colours: np.ndarray, radius_in_r50: np.ndarray) -> float:
    """How far the azimuthally averaged profile climbs again after falling, as a share of its peak: in the light
    or in the colour where it climbs most."""
    return max(_profile_rise(image, radius_in_r50) for image in
               (light, *(colours[..., k] for k in range(colours.shape[2]))))


def _profile_rise(light: np.ndarray, radius_in_r50: np.ndarray) -> float:
    bins = np.digitize(radius_in_r50, _PROFILE_EDGES) - 1
    inside = (bins >= 0) & (bins < len(_PROFILE_EDGES) - 1)
    sums = np.bincount(bins[inside], light[inside], minlength=len(_PROFILE_EDGES) - 1)
    profile = sums / np.maximum(np.bincount(bins[inside], minlength=len(_PROFILE_EDGES) - 1), 1)
    return float(np.max(profile - np.minimum.accumulate(profile)) / max(float(profile.max()), 1e-9))


@dataclass(frozen=True)
class Peak:
    y: int
    x: int
    height: float
    width: float  # how slowly it falls: (mean at 2 px - mean at 4 px) / (peak - mean at 4 px), about 0.3 for a star
    fall: float  # how far (px) its profile takes to fall from 90% to 30% above its surroundings: about 2 for a star
    extent: float  # where (px) its profile has fallen to 5% above its surroundings


def _distinct_peaks(smooth: np.ndarray, segment: np.ndarray, noise: float, clipped: np.ndarray) -> list[Peak]:
    """The object's local peaks, brightest first, each kept only where the light dips between it and the brightest
    (a saturated core's flat top holds many equal maxima but one peak) or where the two top clipped cores apart
    (`clipped`: the labels of the regions clipped to white; two saturated nuclei a few px apart leave no dip after
    smoothing)."""
    ys, xs = np.nonzero((smooth == ndimage.maximum_filter(smooth, 5)) & segment & (smooth > 5 * noise))
    order = np.argsort(-smooth[ys, xs])
    peaks: list[Peak] = []
    for y, x in zip(ys[order], xs[order]):
        height = float(smooth[y, x])
        if peaks:
            first = peaks[0]
            steps = int(np.ceil(2 * np.hypot(y - first.y, x - first.x))) + 2
            between = ndimage.map_coordinates(smooth, [np.linspace(first.y, y, steps), np.linspace(first.x, x, steps)],
                                              order=1)
            cores = {_core_at(clipped, first.y, first.x), _core_at(clipped, int(y), int(x))}
            apart = len(cores) == 2 and 0 not in cores
            if not apart and height - float(between.min()) <= max(0.01 * height, noise):  # ~3.5 x the smoothed noise
                continue
        peaks.append(_peak(smooth, int(y), int(x)))
    return peaks


def _core_at(clipped: np.ndarray, y: int, x: int) -> int:
    """The label of the clipped core a peak tops (0: none)."""
    return int(clipped[max(0, y - 1):y + 2, max(0, x - 1):x + 2].max())


def _is_star(peak: Peak, nucleus: Peak, rgb: np.ndarray) -> bool:
    """A point source in front of the galaxy: narrower than its nucleus, or, where the display clipped it flat
    (a bright star's top is as wide as a nucleus's), with an edge as sharp as the PSF's."""
    if peak.width < POINT_SOURCE_WIDTH * nucleus.width:
        return True
    top = rgb[max(0, peak.y - 1):peak.y + 2, max(0, peak.x - 1):peak.x + 2].max()
    return bool(top >= CLIPPED) and peak.fall < POINT_SOURCE_FALL * nucleus.fall


def _peak(smooth: np.ndarray, y: int, x: int, reach: int = 8) -> Peak:
    """A peak measured on its azimuthal profile (1-px rings out to `reach` px, each ring's mean): how wide it is at
    2 and 4 px, and, as a share of its height above the profile's lowest point, how steeply its edge falls (for a
    star, clipped or not, about the PSF's width; for a nucleus, wider) and how far its light reaches."""
    ys, xs = np.mgrid[max(0, y - reach):min(smooth.shape[0], y + reach + 1),
                      max(0, x - reach):min(smooth.shape[1], x + reach + 1)]
    rings = np.rint(np.hypot(ys - y, xs - x)).astype(int)
    near = rings <= reach
    profile = np.bincount(rings[near], smooth[ys[near], xs[near]], reach + 1) / \
        np.maximum(np.bincount(rings[near], minlength=reach + 1), 1)
    width = (profile[2] - profile[4]) / max(float(profile[0] - profile[4]), 1e-6)
    share = (profile - profile.min()) / max(float(profile[0] - profile.min()), 1e-6)
    return Peak(y, x, float(profile[0]), float(width), _crossing(share, 0.3) - _crossing(share, 0.9),
                _crossing(share, 0.05))


def _crossing(share: np.ndarray, level: float) -> float:
    """Where a falling profile first drops below `level`, interpolated between pixels."""
    below = int(np.argmax(share < level))  # the profile's lowest point is 0, so it is always reached
    if below == 0:
        return 0.0
    return below - 1 + float(share[below - 1] - level) / float(share[below - 1] - share[below])


def _without(image: np.ndarray, stars: list[Peak]) -> np.ndarray:
    """The image with each star's disc (to where its light has fallen, at least 3 px) filled with the median of the
    light just around it."""
    image = image.copy()
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    for star in stars:
        distance, radius = np.hypot(yy - star.y, xx - star.x), max(3.0, star.extent)
        image[distance <= radius] = np.median(image[(distance > radius) & (distance <= radius + 1.5)], axis=0)
    return image


def _colour_gradient(colours: np.ndarray, segment: np.ndarray, inner: np.ndarray) -> float:
    """Red-to-blue (log) inside the half-light radius less outside it."""
    red, blue = (np.clip(colours[..., k], 0, None) for k in (0, 2))

    def colour(region: np.ndarray) -> float:
        return float(np.log(red[region].sum() + 1e-3) - np.log(blue[region].sum() + 1e-3))
    return colour(segment & inner) - colour(segment & ~inner)
