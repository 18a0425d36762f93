"""`import radimt` and `radimt --help` stay light: heavy libraries load when a name needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import radimt

HEAVY = ("matplotlib", "radiomics", "highdicom", "dask", "distributed", "pandas", "sklearn", "SimpleITK")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_radimt_pulls_in_no_heavy_library():
    assert _loaded_after("import radimt") == []


def test_the_command_lines_help_and_version_pull_in_no_heavy_library():
    code = (
        "import contextlib, io\nfrom radimt.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
    )
    for flags in ("['--version']", "['--help']", "['batch', '--help']"):
        assert (
            _loaded_after(code + f"    try:\n        main({flags})\n    except SystemExit:\n        pass")
            == []
        )


def test_the_batch_workers_stack_pulls_in_only_what_a_lesion_uses():
    """The fork server imports the worker's stack once before it forks a worker, and the batch
    waits for it: DICOM SEG and SR writing (highdicom, pydicom's code dictionaries: 0.3 s), Dask
    and the modelling libraries load only when a batch uses them."""
    probe = (
        "import sys, radimt.pipeline.worker\n"
        "print(' '.join(m for m in ('highdicom', 'pydicom.sr', 'dask', 'distributed', 'pandas', "
        "'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_every_public_name_and_submodule_resolves():
    for name in radimt.__all__:
        assert getattr(radimt, name) is not None, name
    assert radimt.dicom.read_planar is not None and radimt.ibsi_filters.FilterSettings is not None
    assert set(radimt.__all__) <= set(dir(radimt))
    try:
        radimt.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'no_such_name'" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_a_function_named_as_its_module_stays_the_function_after_the_module_is_imported():
    code = (
        "import importlib, radimt\n"
        "importlib.import_module('radimt.propose'); importlib.import_module('radimt.robustness')\n"
        "print(radimt.propose.__name__, callable(radimt.propose), callable(radimt.robustness))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["propose", "True", "True"]


def test_dask_nannies_fork_from_the_running_server_without_importing_its_preload_wish_list():
    """A local Dask batch forks its workers from the command line's fork server, which runs
    already: Dask's own preload list (pandas, lz4, ...) would only be imported into the batch's
    process for nothing. Fails if a ``distributed`` upgrade drops the flag that skips it."""
    pytest.importorskip("distributed")
    probe = (
        "import sys, dask, distributed.utils\n"
        "from radimt.processes import keep_dask_off_the_server_preload\n"
        "keep_dask_off_the_server_preload()\n"
        "with dask.config.set({'distributed.worker.multiprocessing-method': 'forkserver'}):\n"
        "    method = distributed.utils.get_mp_context().get_start_method()\n"
        "print(method, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["forkserver", "False"]
