# Shortcuts for the scripts in scripts/ (the scripts are what README.md documents).
.PHONY: up test lint render setup

up:
	bash scripts/up.sh

test:
	bash scripts/test.sh

lint:
	bash scripts/venv.sh && .venv/bin/ruff check .

render:
	bash scripts/venv.sh && .venv/bin/python -m components render --stack $(or $(STACK),dev)

setup:
	bash scripts/setup-postgres.sh
