"""Convolutional filters as IBSI chapter 2 defines them (mean, LoG, Laws, Gabor, separable and
Simoncelli wavelets, Riesz), with its boundary conditions, rotation invariance and pooling.

Conventions (each reproduced the IBSI-2 phase-1 consensus response maps, see the tests):

- Axes: i, j, k are the image's x, y, z (SimpleITK's array is (k, j, i)); a kernel's letters
  (Laws ``E5L5S5``, wavelet ``LHL``) map to i, j, k in that order. Parameters in mm are divided
  by the voxel spacing of their axis.
- Filtering is convolution, not correlation (it matters for odd kernels: Laws E/W, wavelet
  high-pass filters).
- Boundary conditions: ``zero`` (pad with 0), ``nearest`` (repeat the edge voxel), ``periodic``
  (wrap), ``mirror`` (symmetric, the edge voxel repeated).
- ``2D`` filters each slice (constant k) in its (i, j) plane.
- Rotation invariance over the 24 right-angle rotations of the volume (4 in-plane in 2D): the
  image is rotated, filtered and rotated back, and the responses pooled (``max`` or ``mean``).

Examples
--------
>>> import numpy as np, SimpleITK as sitk
>>> impulse = np.zeros((9, 9, 9)); impulse[4, 4, 4] = 1.0
>>> image = sitk.GetImageFromArray(impulse)
>>> out = filter_response(image, FilterSettings("mean", support_vox=3))
>>> round(float(sitk.GetArrayViewFromImage(out)[4, 4, 4]) * 27, 6)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radimt.errors import OptionError

#: IBSI-2 boundary condition -> scipy.ndimage mode and numpy.pad mode.
BOUNDARY = {
    "zero": ("constant", "constant"),
    "nearest": ("nearest", "edge"),
    "periodic": ("wrap", "wrap"),
    "mirror": ("reflect", "symmetric"),
}
FILTERS = ("mean", "log", "laws", "gabor", "wavelet", "simoncelli", "riesz_log", "riesz_simoncelli")

#: Laws' 1-D kernels (divided by their L2 norm when used).
LAWS = {
    "L3": (1, 2, 1),
    "E3": (-1, 0, 1),
    "S3": (-1, 2, -1),
    "L5": (1, 4, 6, 4, 1),
    "E5": (-1, -2, 0, 2, 1),
    "S5": (-1, 0, 2, 0, -1),
    "W5": (-1, 2, 0, -2, 1),
    "R5": (1, -4, 6, -4, 1),
}


@dataclass(frozen=True)
class FilterSettings:
    """One IBSI-2 filter configuration.

    Attributes
    ----------
    filter
        One of :data:`FILTERS`.
    dimensionality
        ``"3D"``, or ``"2D"`` (each slice in its own plane).
    boundary
        ``zero``, ``nearest``, ``periodic`` or ``mirror``.
    support_vox
        Mean filter: voxels per axis.
    sigma_mm, cutoff_sigma
        LoG (and Riesz-LoG): the Gaussian's sigma, the kernel truncated at ``cutoff_sigma``
        sigmas. Gabor: the envelope's sigma.
    laws_kernels
        Laws: one kernel name per axis in i, j, k order (``"E5L5S5"``; two in 2D: ``"L5S5"``).
    energy_distance_vox
        Laws: the energy map's window half-width (mean |response| over 2 d + 1 voxels per axis).
    gabor_gamma, gabor_lambda_mm, gabor_theta_rad
        Gabor: spatial aspect ratio, wavelength, orientation (when not rotation-invariant).
    theta_step_rad, orthogonal_planes
        Gabor: orientations 0, step, ... below 2 pi averaged; in the three orthogonal planes.
    wavelet, level, decomposition
        Separable wavelets (PyWavelets names ``db2``, ``coif1``, ``haar``), undecimated: the
        level and the low/high pass letter per axis (``"LHL"``). Simoncelli: the level.
    riesz_order
        Riesz: the order along i, j, k.
    rotation_invariant, pooling
        Pool the responses of the 24 (2D: 4) right-angle rotations with ``max`` or ``mean``.
    response
        Gabor and Riesz: the ``modulus`` or the ``real`` part of the complex response.
    """

    filter: str
    dimensionality: str = "3D"
    boundary: str = "zero"
    support_vox: int | None = None
    sigma_mm: float | None = None
    cutoff_sigma: float = 4.0
    laws_kernels: str | None = None
    energy_distance_vox: int | None = None
    gabor_gamma: float | None = None
    gabor_lambda_mm: float | None = None
    gabor_theta_rad: float = 0.0
    theta_step_rad: float | None = None
    orthogonal_planes: bool = False
    wavelet: str | None = None
    level: int = 1
    decomposition: str | None = None
    riesz_order: tuple[int, int, int] | None = None
    rotation_invariant: bool = False
    pooling: str = "max"
    response: str = "modulus"

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise OptionError(
                "FilterSettings", "filter", f"{self.filter!r} is not one of {', '.join(FILTERS)}"
            )
        if self.dimensionality not in ("2D", "3D"):
            raise OptionError("FilterSettings", "dimensionality", f"{self.dimensionality!r}: 2D or 3D")
        if self.boundary not in BOUNDARY:
            raise OptionError(
                "FilterSettings", "boundary", f"{self.boundary!r} is not one of {', '.join(BOUNDARY)}"
            )
        if self.pooling not in ("max", "mean"):
            raise OptionError("FilterSettings", "pooling", f"{self.pooling!r}: max or mean")
        needed = {
            "mean": ("support_vox",),
            "log": ("sigma_mm",),
            "riesz_log": ("sigma_mm", "riesz_order"),
            "laws": ("laws_kernels",),
            "gabor": ("sigma_mm", "gabor_gamma", "gabor_lambda_mm"),
            "wavelet": ("wavelet", "decomposition"),
            "riesz_simoncelli": ("riesz_order",),
        }.get(self.filter, ())
        for name in needed:
            if getattr(self, name) is None:
                raise OptionError("FilterSettings", name, f"the {self.filter} filter needs {name}")
        if self.level < 1:
            raise OptionError("FilterSettings", "level", f"{self.level}: 1 or more")

    @property
    def name(self) -> str:
        """The configuration in a column name: filter and parameters, unambiguous."""
        parts = [self.filter, self.dimensionality.lower(), self.boundary]
        if self.support_vox is not None:
            parts.append(f"s{self.support_vox}vox")
        if self.sigma_mm is not None:
            parts.append(f"sigma{self.sigma_mm:g}mm")
        if self.laws_kernels:
            parts.append(
                self.laws_kernels + (f"energy{self.energy_distance_vox}" if self.energy_distance_vox else "")
            )
        if self.filter == "gabor":
            parts.append(f"gamma{self.gabor_gamma:g}_lambda{self.gabor_lambda_mm:g}mm")
            parts.append(
                f"step{self.theta_step_rad:.4g}"
                if self.theta_step_rad
                else f"theta{self.gabor_theta_rad:.4g}"
            )
            if self.orthogonal_planes:
                parts.append("3planes")
        if self.wavelet:
            parts.append(f"{self.wavelet}_{self.decomposition}_level{self.level}")
        elif self.filter in ("simoncelli", "riesz_simoncelli"):
            parts.append(f"level{self.level}")
        if self.riesz_order:
            parts.append("riesz" + "".join(str(v) for v in self.riesz_order))
        if self.rotation_invariant:
            parts.append(f"rot_{self.pooling}")
        return "_".join(parts).replace(".", "p")


def filter_response(image: sitk.Image, settings: FilterSettings) -> sitk.Image:
    """The filter's response map on ``image``'s grid (float64 values, same geometry).

    Parameters
    ----------
    image
        A 3D image (a 2D filter runs slice by slice).
    settings
        The filter configuration.
    """
    if image.GetDimension() != 3:
        raise OptionError(
            "FilterSettings", "image", "IBSI-2 filters here take a 3D image (2D filters run per slice)"
        )
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    spacing = np.array(image.GetSpacing()[::-1], float)  # (k, j, i) like the array
    out = response_array(array, spacing, settings)
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(image)
    return result


def response_in_box(
    array: np.ndarray, spacing: np.ndarray, region: np.ndarray, settings: FilterSettings
) -> np.ndarray:
    """The response on the voxels of ``region`` (a boolean array), computed on the region's box
    with the margin the filter reaches (:func:`support_radius_vox`): the same values there as
    filtering the whole image; elsewhere 0. Fourier-domain filters run on the whole image."""
    reach = support_radius_vox(settings, tuple(spacing))
    where = np.argwhere(region)
    if reach is None or not len(where):
        out = response_array(array, spacing, settings)
        return np.where(region, out, 0.0)
    low = np.maximum(where.min(axis=0) - reach, 0)
    high = np.minimum(where.max(axis=0) + 1 + np.asarray(reach), array.shape)
    if settings.boundary == "periodic" and (np.any(low == 0) or np.any(high == np.asarray(array.shape))):
        out = response_array(array, spacing, settings)  # a box at an edge would wrap onto itself
        return np.where(region, out, 0.0)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
    out = np.zeros(array.shape)
    out[box] = response_array(np.ascontiguousarray(array[box]), spacing, settings)
    return np.where(region, out, 0.0)


def response_array(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    """:func:`filter_response` on a (k, j, i) array with its spacing (mm, same order)."""
    run = _FILTER[settings.filter]

    def once(a: np.ndarray) -> np.ndarray:
        return run(a, spacing, settings)

    if settings.rotation_invariant and settings.filter not in ("gabor",):
        out = _pooled(array, once, settings)
    else:
        out = once(array)
    if settings.filter == "laws" and settings.energy_distance_vox:
        size = 2 * settings.energy_distance_vox + 1
        sizes = (1, size, size) if settings.dimensionality == "2D" else (size, size, size)
        out = ndimage.uniform_filter(np.abs(out), sizes, mode=BOUNDARY[settings.boundary][0])
    return out


def support_radius_vox(settings: FilterSettings, spacing: tuple[float, ...]) -> tuple[int, int, int] | None:
    """How far (voxels along k, j, i) a response voxel sees: a crop of the image with at least
    this margin around a region gives the whole image's response inside that region, exactly.
    ``None`` for the filters computed in the Fourier domain (Simoncelli, Riesz), whose support
    is the whole image.

    Examples
    --------
    >>> support_radius_vox(FilterSettings("log", sigma_mm=2.0), (2.0, 1.0, 1.0))
    (4, 8, 8)
    """
    if settings.filter in ("simoncelli", "riesz_simoncelli", "riesz_log"):
        return None
    k, j, i = (float(v) for v in spacing)
    axes = _axes(settings)
    radius = [0, 0, 0]
    if settings.filter == "mean":
        for a in axes:
            radius[a] = int(settings.support_vox or 1) // 2
    elif settings.filter == "log":
        for a, step in zip((0, 1, 2), (k, j, i), strict=True):
            if a in axes:
                radius[a] = int(settings.cutoff_sigma * float(settings.sigma_mm or 0) / step + 0.5)
    elif settings.filter == "laws":
        reach = max(len(LAWS[n]) // 2 for n in _laws_names(str(settings.laws_kernels)))
        reach += settings.energy_distance_vox or 0
        for a in axes:
            radius[a] = reach
    elif settings.filter == "gabor":
        sigma = float(settings.sigma_mm or 0) / min(i, j)
        reach = max(int(math.ceil(4 * sigma / min(1.0, float(settings.gabor_gamma or 1)))), GABOR_MIN_RADIUS)
        for a in (0, 1, 2) if settings.orthogonal_planes else axes:
            radius[a] = reach
    else:  # separable wavelets: the filters of every level, dilated
        import pywt

        taps = len(pywt.Wavelet(settings.wavelet).dec_lo)
        reach = sum((taps - 1) * 2 ** (level - 1) for level in range(1, settings.level + 1))
        for a in axes:
            radius[a] = reach
    if settings.rotation_invariant and settings.filter != "gabor" and settings.dimensionality == "3D":
        radius = [max(radius)] * 3  # a rotated kernel reaches as far along every axis
    elif settings.rotation_invariant and settings.dimensionality == "2D":
        radius[1] = radius[2] = max(radius[1], radius[2])
    return (radius[0], radius[1], radius[2])


# -- rotation invariance ---------------------------------------------------------------------


def _rotations(dimensionality: str) -> Iterator[tuple[Callable, Callable]]:
    """The right-angle rotations of a (k, j, i) array and their inverses: 24 in 3D (the cube's
    rotation group), 4 in 2D (about k)."""
    if dimensionality == "2D":
        for n in range(4):
            yield (lambda a, n=n: np.rot90(a, n, axes=(1, 2))), (lambda a, n=n: np.rot90(a, -n, axes=(1, 2)))
        return
    # each of the 6 directions for axis 0, then 4 turns about it
    faces = [
        (lambda a: a, lambda a: a),
        (lambda a: np.rot90(a, 1, axes=(0, 1)), lambda a: np.rot90(a, -1, axes=(0, 1))),
        (lambda a: np.rot90(a, 2, axes=(0, 1)), lambda a: np.rot90(a, -2, axes=(0, 1))),
        (lambda a: np.rot90(a, 3, axes=(0, 1)), lambda a: np.rot90(a, -3, axes=(0, 1))),
        (lambda a: np.rot90(a, 1, axes=(0, 2)), lambda a: np.rot90(a, -1, axes=(0, 2))),
        (lambda a: np.rot90(a, 3, axes=(0, 2)), lambda a: np.rot90(a, -3, axes=(0, 2))),
    ]
    for face, unface in faces:
        for n in range(4):
            yield (
                (lambda a, face=face, n=n: np.rot90(face(a), n, axes=(1, 2))),
                (lambda a, unface=unface, n=n: unface(np.rot90(a, -n, axes=(1, 2)))),
            )


def _pooled(
    array: np.ndarray, once: Callable[[np.ndarray], np.ndarray], settings: FilterSettings
) -> np.ndarray:
    pooled: np.ndarray | None = None
    count = 0
    for rotate, back in _rotations(settings.dimensionality):
        response = back(once(np.ascontiguousarray(rotate(array))))
        if pooled is None:
            pooled = response.copy()
        elif settings.pooling == "max":
            np.maximum(pooled, response, out=pooled)
        else:
            pooled += response
        count += 1
    assert pooled is not None
    return pooled / count if settings.pooling == "mean" else pooled


# -- the filters -----------------------------------------------------------------------------


def _axes(settings: FilterSettings) -> tuple[int, ...]:
    """The array axes a filter runs along: (k, j, i) in 3D, (j, i) in 2D."""
    return (1, 2) if settings.dimensionality == "2D" else (0, 1, 2)


def _mean(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    size = [1, 1, 1]
    for axis in _axes(settings):
        size[axis] = int(settings.support_vox)  # type: ignore[arg-type]
    return ndimage.uniform_filter(array, size, mode=BOUNDARY[settings.boundary][0])


def _log(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    sigma = [0.0, 0.0, 0.0]
    for axis in _axes(settings):
        sigma[axis] = float(settings.sigma_mm) / spacing[axis]  # type: ignore[arg-type]
    mode = BOUNDARY[settings.boundary][0]
    out = np.zeros_like(array)
    for axis in _axes(settings):  # second derivatives along the filter's axes only (2D: in-plane)
        order = [0, 0, 0]
        order[axis] = 2
        out += ndimage.gaussian_filter(array, sigma, order=order, mode=mode, truncate=settings.cutoff_sigma)
    return out


def _laws(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    names = _laws_names(str(settings.laws_kernels))
    axes = _axes(settings)[::-1]  # letters map to i, j, k = array axes 2, 1, 0
    if len(names) != len(axes):
        raise OptionError(
            "FilterSettings", "laws_kernels", f"{settings.laws_kernels!r}: one kernel per axis ({len(axes)})"
        )
    out = array
    for name, axis in zip(names, axes, strict=True):
        kernel = np.asarray(LAWS[name], float)
        kernel /= np.linalg.norm(kernel)
        out = ndimage.convolve1d(out, kernel, axis=axis, mode=BOUNDARY[settings.boundary][0])
    return out


def _laws_names(text: str) -> list[str]:
    names = [text[n : n + 2].upper() for n in range(0, len(text), 2)]
    unknown = [n for n in names if n not in LAWS]
    if unknown or len(text) % 2:
        raise OptionError("FilterSettings", "laws_kernels", f"{text!r}: kernels are {', '.join(LAWS)}")
    return names


def _gabor(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    if settings.orthogonal_planes:
        planes = [(1, 2), (0, 2), (0, 1)]  # (j, i), (k, i), (k, j): the (i,j), (i,k), (j,k) planes
        return np.mean([_gabor_plane(array, spacing, settings, plane) for plane in planes], axis=0)
    return _gabor_plane(array, spacing, settings, (1, 2))


def _gabor_plane(
    array: np.ndarray, spacing: np.ndarray, settings: FilterSettings, plane: tuple[int, int]
) -> np.ndarray:
    """Gabor responses in one plane (axes ``plane`` = (v axis, u axis) of the array), pooled over
    the orientations when rotation-invariant."""
    second, first = plane  # the plane's first coordinate runs along the later array axis (i before j)
    step = settings.theta_step_rad if settings.rotation_invariant else None
    thetas = [n * step for n in range(int(round(2 * math.pi / step)))] if step else [settings.gabor_theta_rad]
    responses = [_gabor_one(array, settings, (first, second), spacing, theta) for theta in thetas]
    if len(responses) == 1:
        return responses[0]
    stacked = np.stack(responses)
    return stacked.max(axis=0) if settings.pooling == "max" else stacked.mean(axis=0)


def _gabor_one(
    array: np.ndarray, settings: FilterSettings, axes: tuple[int, int], spacing: np.ndarray, theta: float
) -> np.ndarray:
    first, second = axes  # array axes of the plane's first (u at theta 0) and second coordinate
    sigma = float(settings.sigma_mm) / spacing[first]  # type: ignore[arg-type]
    wavelength = float(settings.gabor_lambda_mm) / spacing[first]  # type: ignore[arg-type]
    gamma = float(settings.gabor_gamma)  # type: ignore[arg-type]
    radius = max(int(math.ceil(4 * sigma / min(1.0, gamma))), GABOR_MIN_RADIUS)
    offsets = np.arange(-radius, radius + 1, dtype=float)
    d_first, d_second = np.meshgrid(offsets, offsets, indexing="ij")
    u = d_first * math.cos(theta) + d_second * math.sin(theta)
    v = -d_first * math.sin(theta) + d_second * math.cos(theta)
    kernel = np.exp(-(u**2 + gamma**2 * v**2) / (2 * sigma**2)) * np.exp(2j * math.pi * u / wavelength)
    shape = [1, 1, 1]
    shape[first], shape[second] = kernel.shape
    kernel = kernel.reshape(shape) if first < second else kernel.T.reshape(shape)
    padded = _pad(array, settings.boundary, [radius if a in axes else 0 for a in range(3)])
    from scipy.signal import fftconvolve  # scipy.signal takes 0.7 s to import: only when used

    out = fftconvolve(padded, kernel, mode="valid", axes=axes)
    return np.abs(out) if settings.response == "modulus" else out.real


#: The smallest Gabor kernel radius (voxels): the reference map 4.b.1 needs at least 30.
GABOR_MIN_RADIUS = 30


def _pad(array: np.ndarray, boundary: str, widths: list[int]) -> np.ndarray:
    return np.pad(array, [(w, w) for w in widths], mode=BOUNDARY[boundary][1])  # type: ignore[call-overload]


def _wavelet(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    import pywt

    wavelet = pywt.Wavelet(settings.wavelet)
    low, high = np.asarray(wavelet.dec_lo, float), np.asarray(wavelet.dec_hi, float)
    letters = str(settings.decomposition).upper()
    axes = _axes(settings)[::-1]  # letters map to i, j, k
    if len(letters) != len(axes) or set(letters) - {"L", "H"}:
        raise OptionError(
            "FilterSettings",
            "decomposition",
            f"{settings.decomposition!r}: one L or H per axis ({len(axes)})",
        )
    mode = BOUNDARY[settings.boundary][0]
    out = array
    for level in range(1, settings.level + 1):
        stretch = 2 ** (level - 1)  # a trous: the level-1 filters with zeros between the taps
        lo, hi = _dilated(low, stretch), _dilated(high, stretch)
        chosen = letters if level == settings.level else "L" * len(axes)
        for letter, axis in zip(chosen, axes, strict=True):
            out = ndimage.convolve1d(out, lo if letter == "L" else hi, axis=axis, mode=mode)
    return out


def _dilated(taps: np.ndarray, stretch: int) -> np.ndarray:
    if stretch == 1:
        return taps
    out = np.zeros(len(taps) * stretch)
    out[::stretch] = taps
    return out


def _frequency_norm(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-axis angular frequencies (n points of linspace(-pi, pi), in FFT order) and |w|."""
    grids = []
    for axis, n in enumerate(shape):
        w = np.fft.ifftshift(np.linspace(-np.pi, np.pi, n)) if axis in axes else np.zeros(n)
        grids.append(w)
    mesh = list(np.meshgrid(*grids, indexing="ij"))
    return mesh, np.sqrt(sum(m**2 for m in mesh))


def _simoncelli(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    axes = _axes(settings)
    _, norm = _frequency_norm(array.shape, axes)
    scaled = (2 ** (settings.level - 1)) * norm
    band = (scaled > np.pi / 4) & (scaled <= np.pi)
    psi = np.zeros_like(scaled)
    psi[band] = np.cos(np.pi / 2 * np.log2(2 * scaled[band] / np.pi))
    return np.fft.ifftn(np.fft.fftn(array, axes=axes) * psi, axes=axes).real


def _riesz(array: np.ndarray, settings: FilterSettings) -> np.ndarray:
    axes = _axes(settings)
    mesh, norm = _frequency_norm(array.shape, axes)
    order = settings.riesz_order or (0, 0, 0)
    per_axis = dict(zip((2, 1, 0), order, strict=True))  # order along i, j, k
    total = sum(order)
    factor = math.sqrt(math.factorial(total) / math.prod(math.factorial(o) for o in order))
    with np.errstate(invalid="ignore", divide="ignore"):
        transfer = np.full(array.shape, factor, dtype=complex)
        for axis, power in per_axis.items():
            if power:
                transfer *= (-1j * mesh[axis] / norm) ** power
    transfer[norm == 0] = 0.0
    out = np.fft.ifftn(np.fft.fftn(array, axes=axes) * transfer, axes=axes)
    return np.abs(out) if settings.response == "modulus" else out.real


RIESZ_PAD = 32  # voxels of padding around the image before the Fourier-domain Riesz transform


def _riesz_log(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    padded = _pad(array, settings.boundary, [RIESZ_PAD if a in _axes(settings) else 0 for a in range(3)])
    response = _riesz(_log(padded, spacing, settings), settings)
    return _crop(response, array.shape, settings)


def _riesz_simoncelli(array: np.ndarray, spacing: np.ndarray, settings: FilterSettings) -> np.ndarray:
    padded = _pad(array, settings.boundary, [RIESZ_PAD if a in _axes(settings) else 0 for a in range(3)])
    response = _riesz(_simoncelli(padded, spacing, settings), settings)
    return _crop(response, array.shape, settings)


def _crop(array: np.ndarray, shape: tuple[int, ...], settings: FilterSettings) -> np.ndarray:
    index = tuple(
        slice(RIESZ_PAD, RIESZ_PAD + n) if a in _axes(settings) else slice(None) for a, n in enumerate(shape)
    )
    return array[index]


_FILTER: dict[str, Callable[[np.ndarray, np.ndarray, FilterSettings], np.ndarray]] = {
    "mean": _mean,
    "log": _log,
    "laws": _laws,
    "gabor": _gabor,
    "wavelet": _wavelet,
    "simoncelli": _simoncelli,
    "riesz_log": _riesz_log,
    "riesz_simoncelli": _riesz_simoncelli,
}
