"""Every public name has an example that runs: the ``Examples`` sections of the docstrings of
everything in ``radimt.__all__`` are executed here (doctest), on :func:`radimt.synth.example_study`
and other synthetic images, so the documentation cannot drift from what radimt does."""

from __future__ import annotations

import doctest
import inspect
import types

import pytest

import radimt

PUBLIC = sorted(name for name in radimt.__all__ if not name.startswith("__"))
#: Modules whose docstring examples (of any function or class in them) run too.
MODULES = ["radimt.analysis", "radimt.options", "radimt.roles", "radimt.dicom.uids", "radimt.features"]


def _docstring(name: str) -> str:
    return inspect.getdoc(getattr(radimt, name)) or ""


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_an_examples_section(name):
    doc = _docstring(name)
    assert "Examples\n--------\n>>>" in doc, f"radimt.{name} has no Examples section with an example"


@pytest.mark.parametrize("name", PUBLIC)
def test_the_examples_of_a_public_name_run_as_written(name):
    obj = getattr(radimt, name)
    finder = doctest.DocTestFinder(recurse=False)
    found = finder.find(obj, f"radimt.{name}", module=False, globs={})
    found = [t for t in found if t.examples]
    assert found, f"radimt.{name}: no examples found"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in found:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"radimt.{name}: {result.failed} example(s) failed (see the output above)"


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_run(module):
    imported = __import__(module, fromlist=["_"])
    assert isinstance(imported, types.ModuleType)
    result = doctest.testmod(imported, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
