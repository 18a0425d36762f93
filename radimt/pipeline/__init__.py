"""Orchestration: manifests and pipeline configurations in, one folder of results out.

- :mod:`radimt.pipeline.manifest` reads the manifest (one row per lesion) into tasks;
- :mod:`radimt.pipeline.config` reads and validates a pipeline YAML;
- :mod:`radimt.pipeline.worker` processes one study (every lesion through
  :func:`radimt.analysis.analyse_lesion`) and writes each lesion's folder;
- :mod:`radimt.pipeline.runner` maps studies over local processes or a Dask cluster, resumes,
  and assembles the tables and the report from the lesion folders.

The science lives outside this package; nothing here computes a feature.
"""

from importlib import import_module
from typing import Any

#: Public names and the module each lives in; imported on first use, so that importing the
#: configuration (as :mod:`radimt.analysis` does) does not load the runner and the worker.
_EXPORTS = {
    "BatchSummary": "runner",
    "LesionRecord": "record",
    "LesionTask": "manifest",
    "PipelineConfig": "config",
    "load_config": "config",
    "read_manifest": "manifest",
    "run_batch": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"radimt.pipeline.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'radimt.pipeline' has no attribute {name!r}")
