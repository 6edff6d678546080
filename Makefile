# Two entry points, both self-installing into .venv/:
#   make demo   set up and run the main job
#   make test   set up and run the tests
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.moro-installed

.PHONY: demo test test-slow venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[render,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/moro demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) build src/*.egg-info
