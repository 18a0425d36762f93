# Two commands do all the set-up on a fresh machine with Python >= 3.10 and pip:
#   make demo   - the main job on sample_dicom/
#   make test   - the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# radimt's own bytecode, compiled once per change of its sources: an editable install compiles
# none, and with PYTHONDONTWRITEBYTECODE set every run would compile radimt again (~0.7 s).
BYTECODE := $(VENV)/.bytecode

.PHONY: demo test test-fast lint sample bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BYTECODE): $(STAMP) $(shell find radimt -name '*.py')
	$(BIN)/python -m compileall -q radimt
	touch $(BYTECODE)

demo: $(BYTECODE)
	$(BIN)/radimt batch sample_dicom/manifest.csv --pipeline pipelines/multimodal.yaml --out out/demo

test: $(BYTECODE)
	$(BIN)/ruff check radimt tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but the tests marked slow or realdata (CI runs `make test`).
test-fast: $(BYTECODE)
	$(BIN)/ruff check radimt tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not slow and not realdata"

sample: $(STAMP)
	rm -rf sample_dicom.new
	$(BIN)/radimt synth sample --out sample_dicom.new
	rm -rf sample_dicom && mv sample_dicom.new sample_dicom

bench: $(BYTECODE)
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_segment.py
	$(BIN)/python benchmarks/bench_kinetics.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_classify.py
	$(BIN)/python benchmarks/bench_propose.py
	$(BIN)/python benchmarks/bench_ibsi2.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
