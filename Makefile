# The two commands of the README: `make run` (set up and run the bot) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.app: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.app

# Exit status 2 means "not configured yet" (the bot has already said what to set or fix): end
# calmly instead of with make's "Error 2", which reads as a crash to someone trying the quickstart.
run: $(VENV)/.app
	@$(BIN)/mini-mentorship run || { status=$$?; if [ $$status -eq 2 ]; then \
	  echo "make run: the bot is not started; do what it says above, then make run again."; \
	  else exit $$status; fi; }

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test
	$(BIN)/mypy

pytest: $(VENV)/.test
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	rm -f mini_mentorship.db mini_mentorship.db-wal mini_mentorship.db-shm mini_mentorship.db-journal
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
