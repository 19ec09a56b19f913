# The two commands of the README: `make demo` (set-up + main job) and `make test` (set-up + tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-matrix lint bench-sandbox clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

demo: install
	$(BIN)/migration demo $(ARGS)

# pytest exits 5 when no test was collected; that is not a failure of the suite.
test: install
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test-matrix: install
	$(BIN)/python -m pytest -m matrix

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench-sandbox: install
	$(BIN)/python bench/sandbox_start.py

clean:
	-$(BIN)/migration sandbox down
	rm -rf $(VENV)
