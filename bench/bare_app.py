"""The baseline: a Flask app that answers every webhook 200 and does nothing else."""

from flask import Flask

app = Flask("bare")


@app.post("/callback")
def callback() -> tuple[str, int]:
    return "{}", 200


@app.get("/healthz")
def healthz() -> tuple[str, int]:
    return "{}", 200
