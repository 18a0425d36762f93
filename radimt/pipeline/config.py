"""Pipeline configurations (YAML under ``pipelines/``), validated when loaded.

An unknown key or a value of the wrong type is an error that names the file and line, before
any study is touched.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from radimt.analysis import AnalysisConfig
from radimt.errors import ConfigError, FeatureError, OptionError, RoleError
from radimt.features import PRESETS, load_params, validate_params
from radimt.io.yamlfiles import safe_load
from radimt.kinetics import KineticOptions, kinetic_options
from radimt.options import unknown_names
from radimt.roles import ROLES, Role
from radimt.segment import SegmentOptions, segment_options

#: The top-level keys of a pyradiomics parameter file.
PYRADIOMICS_KEYS = {"imageType", "featureClass", "setting", "voxelSetting"}


@dataclass(frozen=True)
class PipelineConfig:
    """A batch pipeline: one lesion's analysis, and what the batch does around it.

    Attributes
    ----------
    name
        A label for reports.
    analysis
        What each lesion's analysis computes (:class:`radimt.AnalysisConfig`: reference role,
        segmentation, kinetics, roles and feature presets).
    role_overrides
        ``{role: SeriesNumber or description regex}`` forced onto every study.
    pyradiomics_params
        Set when the pipeline file is a plain pyradiomics parameter file: every role's features
        use it unchanged, and pyradiomics-style batch rows run through pyradiomics as it is.
    diagnostics
        Add pyradiomics' ``diagnostics_*`` columns (``None``: in the pyradiomics-CSV route only).
    pyradiomics_names
        Feature columns keep pyradiomics' own names (no ``<role>_`` prefix); one role only.
    keep_columns
        Manifest columns of the user's own (``age``, ``birads``) to carry into features.csv
        besides the identifying ones; any other unknown column is refused as a likely typo.
    mg_spacing_mm
        The pixel size of mammograms whose header gives none (digitised film: the digitiser's
        sampling, e.g. 0.05 for CBIS-DDSM's 50 µm); without it their sizes are in pixels.
    """

    name: str = "pipeline"
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    role_overrides: dict[str, Any] = field(default_factory=dict)
    pyradiomics_params: str | None = None
    diagnostics: bool | None = None
    pyradiomics_names: bool = False
    keep_columns: tuple[str, ...] = ()
    mg_spacing_mm: float | None = None

    def image_file_params(self) -> str | dict[str, Any]:
        """The pyradiomics parameters of a pyradiomics-style row (an image file and a mask):
        the parameter file the pipeline is, else the reference role's preset (with the
        pipeline's ``image_types``)."""
        if self.pyradiomics_params:
            return self.pyradiomics_params
        analysis = self.analysis
        params = load_params(analysis.presets.get(analysis.reference, "mr"))
        if analysis.image_types is not None:
            params["imageType"] = {n: params["imageType"].get(n) or {} for n in analysis.image_types}
        return params

    def filter_overrides(self) -> list[str]:
        """Where ``image_types`` replaces the filters a role's preset asks for, said in words."""
        image_types = self.analysis.image_types
        if image_types is None:
            return []
        notes = []
        for kind in self.analysis.roles:
            preset = self.analysis.presets.get(kind)
            if preset is None:
                continue
            try:
                asked = list(load_params(preset)["imageType"])
            except FeatureError as exc:  # reported per lesion already; the summary must not fail
                notes.append(f"{kind}: preset {preset!r} cannot be read ({exc})")
                continue
            if sorted(asked) != sorted(image_types):
                notes.append(
                    f"{kind}: image_types {list(image_types)} replace the filters of preset "
                    f"{Path(str(preset)).stem!r} ({', '.join(asked)})"
                )
        return notes

    def intensity_units(self) -> dict[str, str]:
        """Each role's intensity unit as its radiomic features see it: the image's own, or the
        normalised one where the role's preset normalises (z-score over the image × scale)."""
        units: dict[str, str] = {}
        for kind in Role:
            try:
                setting = load_params(self.analysis.presets.get(kind, kind.feature_preset))["setting"]
            except FeatureError:
                continue
            if setting.get("normalize"):
                units[kind.value] = f"normalised z × {setting.get('normalizeScale', 1):g}"
        return units

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as JSON-ready data (run.json)."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        if data.get("mg_spacing_mm") is None:  # absent, as before it existed (digests unchanged)
            data.pop("mg_spacing_mm", None)
        return data

    def digest(self) -> str:
        """A short hash of what the configuration computes (results made with another one are
        redone); its name and the columns it carries along do not count."""
        computed = {k: v for k, v in self.to_dict().items() if k not in ("name", "keep_columns")}
        return hashlib.sha256(json.dumps(computed, sort_keys=True).encode()).hexdigest()[:16]


def resolved_options(config: PipelineConfig) -> dict[str, Any]:
    """Every option as the analysis uses it, defaults filled in: the kinetic options, and the
    segmentation options of the reference role's preset (run.json records them, so a run says
    what it did even where the pipeline said nothing)."""
    analysis = config.analysis
    segmentation = dict(analysis.segmentation)
    preset = segmentation.pop("modality", None) or analysis.reference.segmentation_preset
    return {
        "kinetics": asdict(kinetic_options(**analysis.kinetics)),
        "segmentation": {"modality": preset, **asdict(segment_options(preset, segmentation))},
    }


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
    "keep_columns": list,
    "mg_spacing_mm": (int, float),
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
        data = safe_load(text) or {}
        root = yaml.compose(text)
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
        if (
            not isinstance(value, _TYPES[key])
            or isinstance(value, bool)
            and key in ("dce_phase", "rim_mm", "mg_spacing_mm")
        ):
            fail(key, f"expected {_type_name(_TYPES[key])}, got {type(value).__name__} {value!r}")
    roles = data.get("roles", [str(r) for r in AnalysisConfig.roles])
    for name in [
        *roles,
        data.get("reference", "dce"),
        *data.get("presets", {}),
        *data.get("role_overrides", {}),
    ]:
        if name not in ROLES:
            fail(
                "roles" if name in roles else "reference",
                f"unknown role {name!r}; roles are {', '.join(ROLES)}",
            )
    for role, selector in data.get("role_overrides", {}).items():
        problem = _selector_problem(selector)
        if problem:
            fail("role_overrides", f"{role}: {problem}", option=role)
    segmentation = data.get("segmentation", {})
    kinetics = data.get("kinetics", {})
    for key, options, options_type, extra in (
        ("segmentation", segmentation, SegmentOptions, ("modality",)),
        ("kinetics", kinetics, KineticOptions, ()),
    ):
        unknown = unknown_names(options, options_type, extra)
        if unknown:
            known = sorted([f.name for f in fields(options_type)] + list(extra))
            fail(key, f"unknown option(s) {unknown}; options are {known}")
        for name, value in options.items():  # each value checked by its options class, with its line
            if name in extra:
                continue
            try:
                options_type(**{name: value})
            except OptionError as exc:
                fail(key, f"{exc.option}: {exc.problem}", option=name)
    if data.get("dce_phase", 1) < 1:
        fail("dce_phase", f"expected a post-contrast phase number (1 or more), got {data['dce_phase']}")
    if not 0 <= data.get("rim_mm", 0) < 1e3:
        fail("rim_mm", f"expected a rim width from 0 mm, got {data['rim_mm']}")
    if "mg_spacing_mm" in data and not 0 < data["mg_spacing_mm"] <= 1:
        fail("mg_spacing_mm", f"expected a pixel size above 0 and up to 1 mm, got {data['mg_spacing_mm']}")
    presets = {}
    for name, preset in data.get("presets", {}).items():
        if not isinstance(preset, str):
            message = f"{name}: expected a preset name or a pyradiomics YAML file, got {preset!r}"
            fail("presets", message, option=name)
        if str(preset).endswith((".yaml", ".yml")) and not Path(preset).is_absolute():
            preset = str((path.parent / preset).resolve())
        presets[name] = preset
    image_types = data.get("image_types")
    for kind in roles:  # every role's parameters, as its features will use them, checked now
        preset = presets.get(kind, Role(kind).feature_preset)
        try:
            params = load_params(preset)
            if image_types:
                params["imageType"] = {str(n): params["imageType"].get(n) or {} for n in image_types}
            validate_params(params, f"{kind} features ({Path(str(preset)).name})")
        except FeatureError as exc:
            if kind in presets:
                fail("presets", f"{kind}: {_preset_problem(exc, preset)}", option=kind)
            fail("image_types" if image_types else "roles", _preset_problem(exc, preset))
    try:
        analysis = AnalysisConfig(
            reference=data.get("reference", "dce"),
            dce_phase=int(data.get("dce_phase", 1)),
            segmentation=dict(segmentation),
            roles=tuple(roles),
            presets=presets,
            image_types=tuple(data["image_types"]) if data.get("image_types") else None,
            kinetics=dict(kinetics),
            rim_mm=float(data.get("rim_mm", 2.0)),
        )
    except OptionError as exc:
        fail(exc.option, exc.problem)
    except RoleError as exc:
        fail("roles", str(exc))
    return PipelineConfig(
        name=data.get("name", path.stem),
        analysis=analysis,
        role_overrides=dict(data.get("role_overrides", {})),
        diagnostics=data.get("diagnostics"),
        pyradiomics_names=bool(data.get("pyradiomics_names", False)),
        keep_columns=tuple(str(c) for c in data.get("keep_columns", [])),
        mg_spacing_mm=float(data["mg_spacing_mm"]) if "mg_spacing_mm" in data else None,
    )


_SELECTOR = (
    "expected a SeriesNumber, a list of them, or a regular expression matched against SeriesDescription"
)


def _selector_problem(selector: object, nested: bool = False) -> str:
    """What is wrong with a role override's series selector ('' when nothing)."""
    if isinstance(selector, int) and not isinstance(selector, bool):
        return ""
    if isinstance(selector, str):
        if selector.strip().isdigit():
            return ""
        try:
            re.compile(selector)
        except re.error as exc:
            return f"{selector!r} is not a regular expression ({exc})"
        return ""
    if isinstance(selector, list) and not nested and 0 < len(selector) <= 1000:
        return next((p for p in (_selector_problem(s, nested=True) for s in selector) if p), "")
    return f"{_SELECTOR}, got {type(selector).__name__} {str(selector)[:60]}"


def _preset_problem(error: FeatureError, preset: str) -> str:
    """A preset's problem in words: an unknown name lists the presets, a file's its problem."""
    text = str(error)
    if "unknown feature preset" in text:
        close = difflib.get_close_matches(str(preset), PRESETS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        names = ", ".join(PRESETS)
        return f"unknown preset {preset!r}{hint}; presets are {names}, or a pyradiomics YAML file"
    return text


def _pyradiomics_pipeline(path: Path) -> PipelineConfig:
    """A plain pyradiomics parameter file as a pipeline: it gives every role's features."""
    try:
        validate_params(load_params(path), str(path))
    except FeatureError as exc:
        raise ConfigError(str(exc)) from None
    resolved = str(path.resolve())
    return PipelineConfig(
        name=path.stem,
        analysis=AnalysisConfig(presets={kind: resolved for kind in Role}),
        pyradiomics_params=resolved,
    )


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
