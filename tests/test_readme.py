"""The README's Python snippets run as written, in order, from the repository's root (#15)."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import REPO


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


@pytest.mark.slow
def test_every_readme_python_snippet_runs(tmp_path, monkeypatch):
    snippets = _snippets()
    assert len(snippets) >= 3
    for name in ("sample_dicom", "pipelines"):
        os.symlink(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # files the snippets write land here, not in the checkout
    namespace: dict = {}
    for k, code in enumerate(snippets, start=1):
        try:
            exec(compile(code, f"README.md python snippet {k}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the snippet that broke
            pytest.fail(f"README snippet {k} fails: {type(exc).__name__}: {exc}\n{code}")
    assert (tmp_path / "lesion_seg.dcm").exists() and (tmp_path / "tic.png").exists()
