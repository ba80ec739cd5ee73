.PHONY: demo test lint check ci

demo:
	python3 run.py demo

test:
	python3 run.py test

lint:
	.venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/lint-imports

check:
	python3 run.py check

ci:
	.ci/run
