"""Orchestration: manifests and pipeline configurations in, one folder of results out.

- :mod:`radimt.pipeline.manifest` reads the manifest (one row per lesion) into tasks;
- :mod:`radimt.pipeline.config` reads and validates a pipeline YAML (an
  :class:`radimt.AnalysisConfig` and the batch's own settings);
- :mod:`radimt.pipeline.worker` processes one study (every lesion through
  :func:`radimt.analysis.analyse_lesion`) and writes each lesion's folder;
- :mod:`radimt.pipeline.runner` maps studies over local processes or a Dask cluster, resumes,
  and assembles the tables and :mod:`radimt.pipeline.report` from the lesion folders.

The science lives outside this package (:mod:`radimt.analysis` and below); nothing here
computes a feature, and nothing outside it imports it (but the command line).
"""

from radimt.pipeline.config import PipelineConfig, load_config
from radimt.pipeline.manifest import LesionTask, read_manifest
from radimt.pipeline.record import LesionRecord, LesionStatus
from radimt.pipeline.runner import BatchSummary, run_batch

__all__ = [
    "BatchSummary",
    "LesionRecord",
    "LesionStatus",
    "LesionTask",
    "PipelineConfig",
    "load_config",
    "read_manifest",
    "run_batch",
]
