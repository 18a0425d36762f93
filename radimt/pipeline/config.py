"""Pipeline configurations (YAML under ``pipelines/``), validated when loaded.

An unknown key or a value of the wrong type is an error that names the file and line, before
any study is touched.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from radimt.errors import ConfigError
from radimt.kinetics import KineticOptions
from radimt.lesion import FeatureConfig
from radimt.roles import DEFAULT_PRESETS, ROLES
from radimt.segment import PRESETS as SEGMENT_PRESETS
from radimt.segment import SegmentOptions

#: The top-level keys of a pyradiomics parameter file.
PYRADIOMICS_KEYS = {"imageType", "featureClass", "setting", "voxelSetting"}


@dataclass(frozen=True)
class PipelineConfig:
    """A batch pipeline: which series, how to segment, what to measure.

    Attributes
    ----------
    name
        A label for reports.
    roles
        Roles whose radiomic features go into the row.
    reference
        Role segmented from the seed (``dce`` means the early subtraction).
    segmentation
        Options of :func:`radimt.segment_from_seed` (``modality``, ``tolerance``, ...).
    kinetics
        Options of :func:`radimt.kinetic_curve`.
    presets
        Feature preset (or pyradiomics YAML, relative to the config file) per role.
    image_types
        Image types for all roles (``null`` keeps each preset's).
    dce_phase, rim_mm
        As in :class:`radimt.lesion.FeatureConfig`.
    role_overrides
        ``{role: SeriesNumber or description regex}`` forced onto every study.
    pyradiomics_params
        Set when the pipeline file is a plain pyradiomics parameter file: every role's features
        use it unchanged, and pyradiomics-style batch rows run through pyradiomics as it is.
    diagnostics
        Add pyradiomics' ``diagnostics_*`` columns (``None``: in the pyradiomics-CSV route only).
    pyradiomics_names
        Feature columns keep pyradiomics' own names (no ``<role>_`` prefix); one role only.
    """

    name: str = "pipeline"
    roles: tuple[str, ...] = ("dce", "adc", "t2")
    reference: str = "dce"
    segmentation: dict[str, Any] = field(default_factory=dict)
    kinetics: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    image_types: tuple[str, ...] | None = None
    dce_phase: int = 1
    rim_mm: float = 2.0
    role_overrides: dict[str, Any] = field(default_factory=dict)
    pyradiomics_params: str | None = None
    diagnostics: bool | None = None
    pyradiomics_names: bool = False

    def features(self) -> FeatureConfig:
        return FeatureConfig(
            roles=self.roles,
            presets=self.presets,
            image_types=self.image_types,
            kinetics=self.kinetics,
            dce_phase=self.dce_phase,
            rim_mm=self.rim_mm,
        )

    def filter_overrides(self) -> list[str]:
        """Where ``image_types`` replaces the filters a role's preset asks for, said in words."""
        from radimt.features import FeatureError, load_params

        if self.image_types is None:
            return []
        notes = []
        for role in self.roles:
            preset = self.presets.get(role)
            if preset is None:
                continue
            try:
                asked = list(load_params(preset)["imageType"])
            except FeatureError as exc:  # reported per lesion already; the summary must not fail
                notes.append(f"{role}: preset {preset!r} cannot be read ({exc})")
                continue
            if sorted(asked) != sorted(self.image_types):
                notes.append(
                    f"{role}: image_types {list(self.image_types)} replace the filters of preset "
                    f"{Path(str(preset)).stem!r} ({', '.join(asked)})"
                )
        return notes

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        """A short hash of the resolved configuration (results made with another one are redone)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "roles": list,
    "reference": str,
    "segmentation": dict,
    "kinetics": dict,
    "presets": dict,
    "image_types": (list, type(None)),
    "dce_phase": int,
    "rim_mm": (int, float),
    "role_overrides": dict,
    "diagnostics": (bool, type(None)),
    "pyradiomics_names": bool,
}


def _line(node: yaml.Node | None) -> str:
    return f"line {node.start_mark.line + 1}" if node is not None else "top level"


def load_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read and validate a pipeline YAML.

    Raises
    ------
    ConfigError
        Unknown keys, wrong types, unknown roles or presets, with the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text()
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read this pipeline ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a pipeline is a mapping of settings, not {type(data).__name__}")
    nodes = {k.value: (k, v) for k, v in root.value} if isinstance(root, yaml.MappingNode) else {}
    if data and set(data) <= PYRADIOMICS_KEYS:
        return _pyradiomics_pipeline(path)

    def fail(key: str, message: str, value_node: bool = True, option: str | None = None) -> None:
        key_node, val_node = nodes.get(key, (None, None))
        node = val_node if value_node else key_node
        if option is not None and isinstance(val_node, yaml.MappingNode):
            node = next((v for k, v in val_node.value if k.value == option), node)
        raise ConfigError(f"{path}, {_line(node)}: {key}: {message}")

    for key, value in data.items():
        if key not in _TYPES:
            fail(key, f"unknown setting; settings are {', '.join(_TYPES)}", value_node=False)
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool) and key in ("dce_phase", "rim_mm"):
            fail(key, f"expected {_type_name(_TYPES[key])}, got {type(value).__name__} {value!r}")
    roles = data.get("roles", list(PipelineConfig.roles))
    for role in [
        *roles,
        data.get("reference", "dce"),
        *data.get("presets", {}),
        *data.get("role_overrides", {}),
    ]:
        if role not in ROLES:
            fail(
                "roles" if role in roles else "reference",
                f"unknown role {role!r}; roles are {', '.join(ROLES)}",
            )
    _check_options(
        data.get("segmentation", {}),
        {f.name for f in fields(SegmentOptions)} | {"modality"},
        "segmentation",
        fail,
    )
    if "modality" in data.get("segmentation", {}) and data["segmentation"]["modality"] not in SEGMENT_PRESETS:
        fail(
            "segmentation",
            f"unknown modality {data['segmentation']['modality']!r}; use {sorted(SEGMENT_PRESETS)}",
        )
    _check_options(data.get("kinetics", {}), {f.name for f in fields(KineticOptions)}, "kinetics", fail)
    _check_values(data.get("segmentation", {}), SegmentOptions, "segmentation", fail)
    _check_values(data.get("kinetics", {}), KineticOptions, "kinetics", fail)
    if data.get("dce_phase", 1) < 1:
        fail("dce_phase", f"expected a post-contrast phase number (1 or more), got {data['dce_phase']}")
    if not 0 <= data.get("rim_mm", 0) < 1e3:
        fail("rim_mm", f"expected a rim width from 0 mm, got {data['rim_mm']}")
    presets = dict(DEFAULT_PRESETS)
    for role, preset in data.get("presets", {}).items():
        if str(preset).endswith((".yaml", ".yml")) and not Path(preset).is_absolute():
            preset = str((path.parent / preset).resolve())
        presets[role] = preset
    return PipelineConfig(
        name=data.get("name", path.stem),
        roles=tuple(roles),
        reference=data.get("reference", "dce"),
        segmentation=dict(data.get("segmentation", {})),
        kinetics=dict(data.get("kinetics", {})),
        presets=presets,
        image_types=tuple(data["image_types"]) if data.get("image_types") else None,
        dce_phase=int(data.get("dce_phase", 1)),
        rim_mm=float(data.get("rim_mm", 2.0)),
        role_overrides=dict(data.get("role_overrides", {})),
        diagnostics=data.get("diagnostics"),
        pyradiomics_names=bool(data.get("pyradiomics_names", False)),
    )


def _pyradiomics_pipeline(path: Path) -> PipelineConfig:
    """A plain pyradiomics parameter file as a pipeline: it gives every role's features."""
    from radimt.features import FeatureError, load_params

    try:
        load_params(path)
    except FeatureError as exc:
        raise ConfigError(str(exc)) from None
    resolved = str(path.resolve())
    return PipelineConfig(
        name=path.stem,
        presets={role: resolved for role in ROLES},
        pyradiomics_params=resolved,
    )


def _check_options(options: dict, known: set[str], key: str, fail) -> None:
    unknown = set(options) - known
    if unknown:
        fail(key, f"unknown option(s) {sorted(unknown)}; options are {sorted(known)}")


#: Allowed ranges of option values, (low, high) inclusive; None leaves a side open.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "tolerance": (0.0, 1.0),
    "max_diameter_mm": (1e-3, None),
    "smoothing_mm": (0.0, None),
    "median_radius": (0, 20),
    "seed_radius_mm": (1e-3, None),
    "min_contrast": (0.0, None),
    "opening_mm": (0.0, None),
    "n_baseline": (1, None),
    "initial_window_s": (1e-3, None),
    "min_neighbourhood": (0, 26),
    "ftv_background": (0.0, 1.0),
}
_CHOICES = {"polarity": ("bright", "dark", "auto")}
#: Python types a YAML value may have, per annotation of an option field.
_KINDS: dict[str, type | tuple[type, ...]] = {"float": (int, float), "int": int, "bool": bool, "str": str}


def _check_values(options: dict, dataclass_type: type, key: str, fail) -> None:
    """Each option's value must have its field's type (from the annotation) and range."""
    annotations = {f.name: str(f.type) for f in fields(dataclass_type)}
    for name, value in options.items():
        if name not in annotations:
            continue  # "modality", checked on its own
        kinds = [k.strip() for k in annotations[name].split("|")]
        if value is None:
            if "None" not in kinds:
                fail(key, f"{name}: a value is required", option=name)
            continue
        expected = next(k for k in kinds if k != "None")
        kind = _KINDS[expected]
        if not isinstance(value, kind) or (isinstance(value, bool) and expected != "bool"):
            fail(key, f"{name}: expected {_type_name(kind)}, got {value!r}", option=name)
        if expected in ("float", "int"):
            low, high = _RANGES.get(name, (None, None))
            if not math.isfinite(value):
                fail(key, f"{name}: {value!r} is not a finite number", option=name)
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"{low} or more" if high is None else f"from {low} to {high}"
                fail(key, f"{name}: {value!r} is out of range (expected {bounds})", option=name)
        if name in _CHOICES and value not in _CHOICES[name]:
            fail(key, f"{name}: {value!r} is not one of {', '.join(_CHOICES[name])}", option=name)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        list: "a list",
        dict: "a mapping",
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, "nothing") for k in kinds)
