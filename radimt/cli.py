"""The ``radimt`` command line."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from radimt._version import __version__
from radimt.errors import RadimtError

log = logging.getLogger(__name__)


def _series_rows(path: str) -> tuple[list[dict], list[dict]]:
    from radimt.dicom.roles import assign_roles
    from radimt.dicom.scan import scan_files
    from radimt.dicom.study import dce_timing

    stacks, skipped = scan_files(path)
    assign_roles(stacks)
    dce = [s for s in stacks if s.role == "dce"]
    phase_time: dict[int, float] = {}
    if dce:
        try:
            ordered, times, _ = dce_timing(dce)
            phase_time = {id(s): float(t) for s, t in zip(ordered, times, strict=True)}
        except RadimtError as exc:
            logging.getLogger("radimt").warning("%s", exc)
    rows = []
    for s in stacks:
        spacing = None
        if s.is_planar:
            spacing = _planar_spacing(s)
        elif s.pixel_spacing:
            spacing = [s.pixel_spacing[1], s.pixel_spacing[0]] + ([s.slice_step] if s.slice_step else [])
        detail = ""
        if s.b_value is not None:
            detail = f"b={s.b_value:g}"
        elif id(s) in phase_time:
            detail = f"phase t={phase_time[id(s)]:g}s"
        rows.append(
            {
                "series": s.key,
                "series_number": s.series_number,
                "modality": s.modality,
                "role": s.role,
                "description": s.description,
                "size": [s.columns, s.rows] + ([s.n_images] if not s.is_planar else []),
                "frames": s.first.header.n_frames if s.is_planar else None,
                "spacing_mm": [round(x, 4) for x in spacing] if spacing else None,
                "plane": s.plane,
                "detail": detail,
                "note": s.note,
                "folder": s.folder,
            }
        )
    skipped_rows = [{"path": k.path, "reason": k.reason} for k in skipped]
    return rows, skipped_rows


def _planar_spacing(s) -> list[float] | None:
    from radimt.dicom.volume import projection_spacing, ultrasound_spacing

    header = s.first.header
    try:
        pair = ultrasound_spacing(header)[0] if header.modality == "US" else projection_spacing(header)[0]
    except RadimtError:
        return None
    return [pair[1], pair[0]]


def cmd_scan(args: argparse.Namespace) -> int:
    results = [(path, *_series_rows(path)) for path in args.paths]
    for path, rows, skipped in results:
        if not rows:  # an empty table with exit 0 reads as "nothing wrong"
            aside = " (the folder holds no files)"
            if skipped:
                first = skipped[0]
                aside = f"; {len(skipped)} file(s) set aside, e.g. {first['path']}: {first['reason']}"
            raise RadimtError(
                f"{path}: no DICOM image found{aside}; "
                "check the path (a study folder, or a folder of DICOM files)"
            )
    if args.json:
        payload = [{"path": p, "series": rows, "skipped": skipped} for p, rows, skipped in results]
        json.dump(payload[0] if len(payload) == 1 else payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for i, (path, rows, skipped) in enumerate(results):
        if len(results) > 1:
            print(("\n" if i else "") + f"== {path}")
        _print_table(rows, skipped)
    return 0


def _print_table(rows: list[dict], skipped: list[dict]) -> None:
    header = (
        f"{'series':<8} {'mod':<4} {'role':<6} {'description':<30} {'size':<14} "
        f"{'spacing mm':<18} {'detail':<14} note"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        size = "x".join(str(x) for x in r["size"]) + (
            f" ({r['frames']} fr)" if r["frames"] and r["frames"] > 1 else ""
        )
        spacing = "x".join(f"{x:g}" for x in r["spacing_mm"]) if r["spacing_mm"] else "-"
        print(
            f"{r['series']:<8} {r['modality']:<4} {r['role']:<6} {r['description'][:30]:<30} "
            f"{size:<14} {spacing:<18} {r['detail']:<14} {r['note']}"
        )
    if skipped:
        print(f"\n{len(skipped)} file(s) set aside:")
        for k in skipped:
            print(f"  {k['path']}: {k['reason']}")


def cmd_synth_sample(args: argparse.Namespace) -> int:
    from radimt.synth.studies import write_sample_dicom

    truths = write_sample_dicom(args.out)
    print(f"wrote {len(truths)} synthetic studies and manifest.csv to {args.out}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from radimt.analysis import LesionInput, delineate
    from radimt.dicom.study import load_study
    from radimt.io import write_dicom_seg, write_mask
    from radimt.measure import longest_diameter_mm, mask_volume_mm3, voxel_count
    from radimt.report import overlay_png

    by_index = args.seed_index is not None
    flag, text = ("--seed-index", args.seed_index) if by_index else ("--seed", args.seed)
    try:
        seed = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise RadimtError(f"{flag} {text!r}: give numbers separated by commas, e.g. -108,0,-10") from None
    is_index = by_index or args.index
    study = load_study(args.study)
    options = {k: v for k, v in (("tolerance", args.tolerance), ("max_diameter_mm", args.max_diameter)) if v}
    if args.modality:
        options["modality"] = args.modality
    reference, mask = delineate(
        study, LesionInput(seed=seed, seed_is_index=is_index, series=args.series), segmentation=options
    )
    image, series, what = reference.image, reference.series, reference.label
    if args.seg and series is None:
        raise RadimtError(
            f"--seg: {what} was computed by radimt, so there is no source series for the DICOM SEG to "
            "reference; name a scanner series with --series"
        )
    write_mask(mask, args.out)
    png = args.png or str(Path(args.out).with_name(Path(args.out).name.split(".")[0] + "_overlay.png"))
    overlay_png(image, mask, png, title=f"{what}: {longest_diameter_mm(mask):.1f} mm")
    if args.seg and series is not None:  # (refused above when there is no series)
        write_dicom_seg(mask, series, args.seg, label=args.label, keep_phi=args.keep_phi)
    unit = "mm³" if mask.GetDimension() == 3 else "mm²"
    print(f"segmented on: {what} ({series.label if series is not None else 'computed by radimt'})")
    print(f"volume: {mask_volume_mm3(mask):.1f} {unit}")
    print(f"longest diameter: {longest_diameter_mm(mask):.1f} mm")
    print(f"voxels: {voxel_count(mask)}")
    print(f"mask: {args.out}\noverlay: {png}" + (f"\nDICOM SEG: {args.seg}" if args.seg else ""))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    local_dask = args.scheduler == "local-dask"
    if (args.workers > 1 and not args.scheduler) or local_dask:  # workers' imports beside this one's
        from radimt.processes import start_worker_server, stop_worker_server

        start_worker_server(dask=local_dask)
        try:
            return _batch(args)
        finally:
            stop_worker_server()
    return _batch(args)


def _batch(args: argparse.Namespace) -> int:
    from radimt.pipeline.runner import run_batch

    summary = run_batch(
        args.manifest,
        args.pipeline,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        threads=args.threads,
        force=args.force,
        seg=args.seg,
        keep_phi=args.keep_phi,
        table_format=args.format,
        diagnostics=args.diagnostics,
        keep_columns=[c.strip() for c in args.keep_columns.split(",") if c.strip()],
        pyradiomics_names=args.pyradiomics_names,
        mg_spacing_mm=args.mg_spacing,
    )
    print(
        f"{summary.total} lesions: {summary.done} done ({summary.skipped} from an earlier run), "
        f"{summary.failed} failed, {summary.seconds:.1f} s"
    )
    print(f"features: {args.out}/features.csv\nreport:   {args.out}/report.html")
    if summary.failed:
        print(f"failures: {args.out}/errors.csv", file=sys.stderr)
    if args.push:
        _push(args.out, args.push, args.protocol)
    return 0 if summary.ok else 1


def _push(out: str, profile_path: str, protocol: str | None) -> None:
    from radimt.pacs import connect, load_profile, push_run

    transport = connect(load_profile(profile_path), protocol)
    report = push_run(transport, out)
    print(
        f"pushed to {transport.profile.name}: {report.stored} stored, {report.already_there} already there "
        f"({out}/pushed.csv)"
    )


def cmd_push(args: argparse.Namespace) -> int:
    _push(args.out, args.pacs, args.protocol)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from radimt.pacs import connect, load_profile, pull

    queries = [{"StudyInstanceUID": v} for v in args.study_uid or []]
    queries += [{"AccessionNumber": v} for v in args.accession or []]
    queries += [{"PatientID": v} for v in args.patient_id or []]
    if args.manifest:
        import csv

        with open(args.manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
        named = [r["study_uid"] for r in rows if (r.get("study_uid") or "").strip()]
        if not named:
            raise RadimtError(f"{args.manifest}: no study_uid column values to pull")
        queries += [{"StudyInstanceUID": v.strip()} for v in dict.fromkeys(named)]
    if not queries:
        raise RadimtError("name the studies: --study-uid, --accession, --patient-id or --manifest")
    transport = connect(load_profile(args.pacs), args.protocol)
    pulled = pull(transport, queries, args.cache, connections=args.connections)
    for study in pulled:
        print(
            f"{study.study_uid}: {study.instances} instances ({study.fetched} fetched now) in {study.folder}"
        )
    print(f"index: {args.cache}/pulled.csv")
    if args.manifest:
        from pathlib import Path

        from radimt.io.tables import write_table

        folders = {s.study_uid: str(Path(s.folder).resolve()) for s in pulled}
        for row in rows:
            uid = (row.get("study_uid") or "").strip()
            if uid in folders:
                row["path"] = folders[uid]
        ready = Path(args.cache) / "manifest.csv"
        write_table(rows, ready, id_columns=list(rows[0]))
        print(f"manifest with the pulled folders: {ready} (radimt batch {ready} ...)")
    return 0


def _model_config(args: argparse.Namespace):
    from radimt.classify import ModelConfig

    return ModelConfig(
        model=args.model,
        selector=args.selector,
        n_features=args.n_features,
        positive=args.positive,
        multiclass=args.multiclass,
        harmonize=args.harmonize,
        outer_splits=args.outer,
        inner_splits=args.inner,
        repeats=args.repeats,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        random_state=args.seed,
        n_jobs=args.jobs,
        clinical=tuple(c.strip() for c in args.clinical.split(",") if c.strip()),
        calibration=args.calibration,
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from radimt.classify import evaluate, load_table
    from radimt.progress import Progress
    from radimt.report.model import write_evaluation

    config = _model_config(args)
    data = load_table(args.features, config, label=args.label, group=args.group)
    _say_left_out(data.excluded, len(data.y))
    folds = config.repeats * config.outer_splits
    progress = Progress(folds * (1 + config.n_permutations), "step")  # a permutation: all the folds
    result = evaluate(data, config, progress=progress.update)
    progress.close()
    write_evaluation(result, Path(args.out))
    m = result.metrics
    unit = "patient" if result.grouped else "lesion"
    ci = (
        f"; 95% CI {m['roc_auc_ci_low']:.2f}-{m['roc_auc_ci_high']:.2f} by {unit} bootstrap of each repeat"
        if "roc_auc_ci_low" in m
        else ""
    )
    print(
        f"ROC AUC {m['roc_auc']:.3f} (mean of {config.repeats} repeats, SD "
        f"{m['roc_auc_per_repeat_sd']:.3f}{ci}); report: {args.out}/evaluation.html"
    )
    for note in result.notes:
        print(f"note: {note}")
    return 0


def _say_left_out(excluded: list[dict[str, str]], used: int) -> None:
    """Print which rows of the table a model leaves out, and why (never silently fewer cases)."""
    from radimt.classify import excluded_lines

    if excluded:
        print(f"{used} cases used; {len(excluded)} row(s) of the table left out:")
        for line in excluded_lines(excluded):
            print(f"  {line}")


def cmd_train(args: argparse.Namespace) -> int:
    from radimt.classify import load_table, model_card, save_model, train

    config = _model_config(args)
    data = load_table(args.features, config, label=args.label, group=args.group)
    _say_left_out(data.excluded, len(data.y))
    model = train(data, config)
    save_model(model, args.out, model_card(data, config, model, None))
    print(f"model: {args.out} (card: {args.out}.card.json)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from radimt.classify import load_model, load_model_card, predict, probability_column, read_features
    from radimt.io.tables import write_table

    model = load_model(args.model)
    card = load_model_card(args.model, model)
    if not card:
        log.warning("%s: no model card beside the model; the decision threshold is 0.5", args.model)
    threshold = float(card.get("threshold", 0.5))
    out = predict(model, read_features(args.features), unknown_site=args.unknown_site)
    classes = model.classes_names_
    if len(classes) == 2:
        out["prediction"] = [
            classes[1] if p >= threshold else classes[0] for p in out[probability_column(classes[1])]
        ]
        out["threshold"] = threshold
    else:
        out["prediction"] = out[[probability_column(c) for c in classes]].to_numpy().argmax(axis=1)
        out["prediction"] = [classes[i] for i in out["prediction"]]
    write_table(out.to_dict("records"), args.out, id_columns=list(out.columns))
    print(f"{len(out)} predictions (threshold {threshold}): {args.out}")
    return 0


def cmd_synth_cohort(args: argparse.Namespace) -> int:
    from radimt.synth.cohort import write_cohort

    manifest = write_cohort(args.out, n_imt=args.n_imt, n_mimics=args.n_mimics, seed=args.seed)
    print(f"wrote {args.n_imt + args.n_mimics} synthetic studies; manifest: {manifest}")
    return 0


def cmd_synth_scenes(args: argparse.Namespace) -> int:
    from radimt.synth.scene import write_scene_cohort

    truths = write_scene_cohort(args.out, args.studies, seed=args.seed)
    lesions = sum(len(t["lesions"]) for t in truths)
    print(f"wrote {len(truths)} DCE studies ({lesions} lesions; truth.json in each) to {args.out}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from radimt.review import serve

    serve(args.out, port=args.port, reviewer=args.reviewer, open_browser=args.open)
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    from radimt.pipeline.candidates import propose_studies
    from radimt.propose import ProposeOptions

    given = {
        "enhancement_threshold_pct": args.threshold,
        "min_score": args.min_score,
        "max_candidates": args.max_candidates,
    }
    options = ProposeOptions(**{name: value for name, value in given.items() if value is not None})
    count, failed = propose_studies(
        args.inputs, args.out, maps=args.maps, options=options, keep_phi=args.keep_phi
    )
    maps = f"; kinetic maps and report in {args.maps}" if args.maps else ""
    print(f"{count} candidate(s) in {args.out}{maps}")
    print(f"next: radimt batch {args.out} --pipeline pipelines/breast_mri.yaml --out OUT")
    for study, reason in failed:
        print(f"{study}: failed: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", help="features.csv from radimt batch (label column required)")
    parser.add_argument("--label", default="label", help="label column")
    parser.add_argument("--group", default="group", help="patient column for grouped cross-validation")
    parser.add_argument("--positive", default="IMT", help="positive class (binary: it versus the rest)")
    parser.add_argument("--multiclass", action="store_true", help="one class per label value")
    parser.add_argument(
        "--model",
        default="logistic",
        choices=("logistic", "random_forest", "gradient_boosting"),
        help="classifier",
    )
    parser.add_argument(
        "--selector", default="univariate", choices=("univariate", "l1"), help="feature selection"
    )
    parser.add_argument("--n-features", type=int, default=10, help="features kept by selection")
    parser.add_argument("--harmonize", help="ComBat-harmonise by this column (site or scanner)")
    parser.add_argument("--outer", type=int, default=5, help="outer folds")
    parser.add_argument("--inner", type=int, default=5, help="inner folds")
    parser.add_argument("--repeats", type=int, default=10, help="outer repeats")
    parser.add_argument(
        "--permutations", type=int, default=20, help="permutation-test repetitions (each the whole procedure)"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--jobs", type=int, default=1, help="parallel folds (joblib)")
    parser.add_argument(
        "--calibration",
        default="platt",
        choices=("platt", "none"),
        help="recalibrate probabilities in every fold (Platt, on inner-fold scores), or keep scores",
    )
    parser.add_argument(
        "--clinical",
        default="",
        help="comma-separated columns besides radimt's features to use as predictors (e.g. age,birads)",
    )


class _Help(argparse.HelpFormatter):
    """``--help`` shows each option's default (when it has a value worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


#: ModelConfig fields as the command line names them, for error messages from the classifier.
_FLAGS = {
    "outer_splits": "--outer",
    "inner_splits": "--inner",
    "n_permutations": "--permutations",
    "n_bootstrap": "--bootstrap",
    "n_features": "--n-features",
    "random_state": "--seed",
    "n_jobs": "--jobs",
}


def _flag_names(message: str) -> str:
    """A classifier message with its setting names replaced by the command line's flags."""
    return re.sub(r"\b(" + "|".join(_FLAGS) + r")\b", lambda m: _FLAGS[m.group(1)], message)


def _negative_values(argv: Sequence[str]) -> list[str]:
    """``--seed -108,0,-10`` as ``--seed=-108,0,-10``: argparse would take the value for a flag."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("--seed", "--seed-index") and i + 1 < len(tokens) and re.match(r"-[\d.]", tokens[i + 1]):
            out.append(f"{token}={tokens[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radimt", description="Breast imaging radiomics from DICOM.", formatter_class=_Help
    )
    parser.add_argument("--version", action="version", version=f"radimt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what radimt does")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error instead of a log file"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # defaults in every --help
    sub.add_parser = functools.partial(sub.add_parser, formatter_class=_Help)  # type: ignore[method-assign]

    scan = sub.add_parser("scan", help="list the series of a study folder with their roles")
    scan.add_argument("paths", nargs="+", metavar="STUDY", help="study folder(s), each scanned as one study")
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.set_defaults(func=cmd_scan)

    seg = sub.add_parser("segment", help="segment a lesion from one seed point")
    seg.add_argument("study", help="study folder")
    where = seg.add_mutually_exclusive_group(required=True)
    where.add_argument("--seed", help="X,Y,Z in LPS mm, e.g. -108,0,-10 (negative values are fine)")
    where.add_argument("--seed-index", help="I,J,K: a voxel index of the image segmented on")
    seg.add_argument("--index", action="store_true", help="read --seed as a voxel index (as --seed-index)")
    seg.add_argument(
        "--series", help="segment on this series (number or number.stack); default: DCE subtraction"
    )
    seg.add_argument("--modality", help="preset: mr, ct, mg, us, adc, dwi (default: from the series)")
    seg.add_argument("--tolerance", type=float, help="boundary between background (0) and lesion (1)")
    seg.add_argument("--max-diameter", type=float, help="largest lesion expected, mm")
    seg.add_argument("--out", required=True, help="mask file (.nii.gz or .nrrd)")
    seg.add_argument("--seg", help="also write a DICOM SEG referencing the series")
    seg.add_argument("--label", default="lesion", help="segment label in the DICOM SEG")
    seg.add_argument(
        "--keep-phi", action="store_true", help="keep patient identifiers in the DICOM SEG (default: removed)"
    )
    seg.add_argument("--png", help="overlay PNG (default: next to --out)")
    seg.set_defaults(func=cmd_segment)

    batch = sub.add_parser("batch", help="run a pipeline over a manifest of studies and lesions")
    batch.add_argument("manifest", help="manifest CSV (study_id, path, seeds or masks, labels)")
    batch.add_argument("--pipeline", required=True, help="pipeline YAML, e.g. pipelines/breast_mri.yaml")
    batch.add_argument("--out", required=True, help="output folder")
    batch.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    batch.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="threads per worker (default: every core with one worker, one each with several)",
    )
    batch.add_argument("--scheduler", help="Dask scheduler address, or local-dask for a LocalCluster")
    batch.add_argument(
        "--mg-spacing",
        type=float,
        metavar="MM",
        help="pixel size of mammograms whose header gives none (digitised film, e.g. 0.05); "
        "without it their sizes are in pixels",
    )
    batch.add_argument("--format", default="csv", choices=("csv", "parquet"), help="features table format")
    batch.add_argument(
        "--seg",
        action="store_true",
        help="also write a DICOM SEG per lesion and its DICOM SR measurement report (TID 1500)",
    )
    batch.add_argument(
        "--push",
        metavar="PROFILE",
        help="then store the run's SEG and SR on the PACS of this profile (with --seg)",
    )
    batch.add_argument(
        "--protocol", choices=("dicomweb", "dimse"), help="for --push (default: the profile's)"
    )
    batch.add_argument("--force", action="store_true", help="recompute lesions that are already done")
    batch.add_argument("--keep-phi", action="store_true", help="keep patient identifiers in DICOM outputs")
    batch.add_argument(
        "--diagnostics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pyradiomics' diagnostics_* columns (default: on for pyradiomics Image,Mask rows)",
    )
    batch.add_argument(
        "--pyradiomics-names",
        action="store_true",
        default=None,
        help="feature columns under pyradiomics' own names, without the <role>_ prefix (one role)",
    )
    batch.add_argument(
        "--keep-columns",
        default="",
        metavar="NAME[,NAME]",
        help="manifest columns of your own to carry into features.csv (group, site, scanner always are)",
    )
    batch.set_defaults(func=cmd_batch)

    evaluate = sub.add_parser("evaluate", help="nested cross-validation of the IMT classifier, with a report")
    _model_options(evaluate)
    evaluate.add_argument("--out", required=True, help="report folder")
    evaluate.set_defaults(func=cmd_evaluate)
    train = sub.add_parser("train", help="fit the classifier on a features table and save it (skops)")
    _model_options(train)
    train.add_argument("--out", required=True, help="model file (.skops)")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="probabilities from a saved model")
    predict.add_argument("model", help="model file from radimt train")
    predict.add_argument("features", help="features.csv with the model's columns")
    predict.add_argument("--out", required=True, help="predictions CSV")
    predict.add_argument(
        "--unknown-site",
        default="refuse",
        choices=("refuse", "unharmonised"),
        help="a site the harmonised model never saw: refuse, or keep those cases' raw values",
    )
    predict.set_defaults(func=cmd_predict)

    synth = sub.add_parser("synth", help="write synthetic studies with ground truth")
    synth_sub = synth.add_subparsers(dest="what", required=True)
    synth_sub.add_parser = functools.partial(synth_sub.add_parser, formatter_class=_Help)  # type: ignore[method-assign]
    sample = synth_sub.add_parser("sample", help="the sample studies shipped in sample_dicom/")
    sample.add_argument("--out", required=True, help="output folder")
    sample.set_defaults(func=cmd_synth_sample)
    cohort = synth_sub.add_parser("cohort", help="a labelled cohort of IMT and mimics (synthetic)")
    cohort.add_argument("--out", required=True, help="output folder")
    cohort.add_argument("--n-imt", type=int, default=36)
    cohort.add_argument("--n-mimics", type=int, default=108)
    cohort.add_argument("--seed", type=int, default=0)
    cohort.set_defaults(func=cmd_synth_cohort)
    scenes = synth_sub.add_parser(
        "scenes", help="whole-breast DCE studies with lesions and every distractor (tests radimt propose)"
    )
    scenes.add_argument("--out", required=True, help="output folder")
    scenes.add_argument("--studies", type=int, default=5)
    scenes.add_argument("--seed", type=int, default=1000, help="first study's random seed")
    scenes.set_defaults(func=cmd_synth_scenes)

    proposer = sub.add_parser(
        "propose", help="ranked lesion candidates from the DCE, written as a manifest radimt batch runs"
    )
    proposer.add_argument(
        "inputs", nargs="+", metavar="STUDY|MANIFEST", help="study folders or manifest CSVs"
    )
    proposer.add_argument("--out", required=True, help="candidates.csv (a radimt manifest: rank = lesion_id)")
    proposer.add_argument(
        "--maps", help="folder for each study's kinetic map (DICOM SEG and MIP) and report.html"
    )
    proposer.add_argument(
        "--threshold", type=float, help="initial enhancement that counts, %% (default 50: BI-RADS medium)"
    )
    proposer.add_argument(
        "--min-score", type=float, help="candidates under this score are left out (default 0.3)"
    )
    proposer.add_argument("--max-candidates", type=int, help="at most this many per study (default 10)")
    proposer.add_argument("--keep-phi", action="store_true", help="keep patient identifiers in the SEG")
    proposer.set_defaults(func=cmd_propose)

    review = sub.add_parser(
        "review", help="review every lesion of a run in the browser: accept, reject or re-seed"
    )
    review.add_argument("out", metavar="OUT", help="the --out folder of a radimt batch run")
    review.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    review.add_argument("--reviewer", help="name recorded with each decision (default: your user name)")
    review.add_argument("--open", action="store_true", help="open the page in the default browser")
    review.set_defaults(func=cmd_review)

    puller = sub.add_parser("pull", help="studies from a PACS into a local cache (DICOMweb or DIMSE)")
    puller.add_argument(
        "--pacs", required=True, metavar="PROFILE", help="the PACS profile (YAML; see README)"
    )
    puller.add_argument("--cache", required=True, help="cache folder: one folder per study")
    puller.add_argument("--study-uid", nargs="+", help="StudyInstanceUIDs")
    puller.add_argument("--accession", nargs="+", help="AccessionNumbers")
    puller.add_argument("--patient-id", nargs="+", help="PatientIDs (every study of each)")
    puller.add_argument("--manifest", help="a manifest whose study_uid column names the studies")
    puller.add_argument("--protocol", choices=("dicomweb", "dimse"), help="default: the profile's")
    puller.add_argument("--connections", type=int, default=4, help="series fetched at once (default 4)")
    puller.set_defaults(func=cmd_pull)

    pusher = sub.add_parser("push", help="store a run's SEG and SR on a PACS, next to the images")
    pusher.add_argument("out", metavar="OUT", help="the --out folder of a radimt batch run with --seg")
    pusher.add_argument("--pacs", required=True, metavar="PROFILE", help="the PACS profile (YAML)")
    pusher.add_argument("--protocol", choices=("dicomweb", "dimse"), help="default: the profile's")
    pusher.set_defaults(func=cmd_push)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so the batch stops its workers and leaves as on Ctrl-C."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's or ``kill``'s stop) unwinds like Ctrl-C: a batch then stops its
    worker processes instead of leaving them writing after it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = _negative_values(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        with _terminate_as_interrupt():
            return args.func(args)
    except Terminated:
        print("radimt: stopped (SIGTERM); a batch resumes where it stopped when run again", file=sys.stderr)
        return 143
    except RadimtError as exc:
        message = _flag_names(str(exc)) if args.command in ("evaluate", "train") else str(exc)
        print(f"radimt: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head/less that closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("radimt: interrupted; a batch resumes where it stopped when run again", file=sys.stderr)
        return 130
    except OSError as exc:  # a file or folder the user named: missing, unreadable, unwritable
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"radimt: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen input: one line and a log
        if args.debug:
            raise
        log_path = _crash_log(argv)
        print(
            f"radimt: error: unexpected {type(exc).__name__} in 'radimt {args.command}': {exc}; the "
            f"traceback is in {log_path} (--debug shows it here); please report it with that file",
            file=sys.stderr,
        )
        return 2


def _crash_log(argv: Sequence[str]) -> str:
    """Write the current exception's traceback, the command and versions to a log file; its path.

    The folder is ``RADIMT_LOG_DIR`` when set, else ``radimt-logs`` in the temporary directory.
    """
    import datetime
    import os
    import platform
    import tempfile
    import traceback

    folder = os.environ.get("RADIMT_LOG_DIR") or os.path.join(tempfile.gettempdir(), "radimt-logs")
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(folder, f"radimt-{stamp}-{os.getpid()}.log")
    with open(path, "w") as fh:
        fh.write(f"radimt {__version__}, Python {platform.python_version()}, {platform.platform()}\n")
        fh.write(f"command: radimt {' '.join(argv)}\n\n")
        fh.write(traceback.format_exc())
    return path


def run() -> NoReturn:
    """The ``radimt`` command: :func:`main`, then the process ends at once
    (:func:`radimt.processes.end_process`)."""
    from radimt.processes import end_process

    end_process(main())


if __name__ == "__main__":
    run()
