"""`stepline check`, `stepline diagram` and `stepline schema` (loaded by `bot.cli`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.catalogue.catalogue import Catalogue, Problem

DEFAULT_FLOWS = "./flows"

_flows_option = click.option(
    "--flows",
    "flows",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of YAML files. Default: $STEPLINE_FLOWS, else ./flows.",
)


def flows_folder(option: Path | None) -> Path:
    """The folder given, else STEPLINE_FLOWS, else ./flows."""
    if option is not None:
        return option
    return Path(os.environ.get("STEPLINE_FLOWS") or DEFAULT_FLOWS)


def format_problem(problem: Problem) -> str:
    from bot.catalogue.source import display_path

    return f"{display_path(problem.file)}:{problem.line}:{problem.col}: {problem.text}"


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def summary(catalogue: Catalogue) -> str:
    parts = [
        _count(len(catalogue.flows), "flow"),
        _count(len(catalogue.tags), "tag"),
        _count(len(catalogue.fields), "field"),
        _count(len(catalogue.keywords), "keyword"),
        _count(len(catalogue.links), "link"),
    ]
    if catalogue.events:
        parts.append(_count(len(catalogue.events), "event"))
    if catalogue.sequences:
        parts.append(_count(len(catalogue.sequences), "sequence"))
    if catalogue.segments:
        parts.append(_count(len(catalogue.segments), "segment"))
    if catalogue.broadcasts:
        parts.append(_count(len(catalogue.broadcasts), "broadcast"))
    if catalogue.rich_menus:
        parts.append(_count(len(catalogue.rich_menus), "rich menu"))
    return "ok: " + ", ".join(parts)


@click.command("check")
@_flows_option
def check_command(flows: Path | None) -> None:
    """Validate and lint every YAML file of the flows folder.

    Prints each problem as `file:line:col: message` and exits with status 1 when there is
    any; prints a summary and exits with 0 when the catalogue is good. Warnings
    (`file:line:col: warning: message`, such as a link whose on_click sends a message) are
    printed too and do not fail the check.

    \b
    Checked: YAML syntax, files over 1 MB, nesting over 100 levels and aliases that expand a
    document beyond 200,000 values (refused before they are expanded), every key and value
    against the language, unknown tags/fields/flows/steps/links, values that do not fit their
    field, unreachable steps, missing `next`/`goto` targets, LINE's limits (13 quick replies,
    20-character labels, 300-character postback data, 5000 UTF-16 units of text, template
    message texts, HTTPS images, 5 messages per reply), message objects, templates, keyword
    regexes RE2 cannot run (backreferences, lookaround), and
    keywords or postbacks that collide.
    """
    from bot.catalogue.loader import check_folder
    from bot.catalogue.source import display_path

    folder = flows_folder(flows)
    catalogue, problems = check_folder(folder)
    for problem in problems:
        click.echo(format_problem(problem))
    warnings = sum(problem.warning for problem in problems)
    also = f", {_count(warnings, 'warning')}" if warnings else ""
    if catalogue is None:
        files = len({p.file for p in problems})
        click.echo(
            f"{_count(len(problems) - warnings, 'problem')}{also} in {_count(files, 'file')}"
            f" (the catalogue in {display_path(str(folder))} was not loaded)"
        )
        raise SystemExit(1)
    click.echo(summary(catalogue) + (f"; {_count(warnings, 'warning')}" if warnings else ""))


@click.command("diagram")
@click.argument("flow")
@_flows_option
@click.option(
    "--svg",
    "svg",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also render the diagram to this SVG file (needs the Mermaid CLI `mmdc` on PATH).",
)
def diagram_command(flow: str, flows: Path | None, svg: Path | None) -> None:
    """Print the FLOW as a Mermaid state diagram.

    Paste the text into any Mermaid viewer (GitHub renders ```mermaid blocks), or give
    --svg to render it with the Mermaid CLI (npm install -g @mermaid-js/mermaid-cli).
    """
    from bot.catalogue.diagram import mermaid
    from bot.catalogue.loader import check_folder

    catalogue, problems = check_folder(flows_folder(flows))
    if catalogue is None:
        for problem in problems:
            click.echo(format_problem(problem), err=True)
        raise click.ClickException(
            f"the catalogue has {_count(len(problems), 'problem')}; run `stepline check`"
        )
    if flow not in catalogue.flows:
        known = ", ".join(sorted(catalogue.flows)) or "none"
        raise click.ClickException(f"no flow named '{flow}' (flows: {known})")
    text = mermaid(catalogue.flows[flow])
    if svg is None:
        click.echo(text, nl=False)
        return
    renderer = shutil.which("mmdc")
    if renderer is None:
        raise click.ClickException(
            "--svg needs the Mermaid CLI (`mmdc`) on PATH; install it with"
            " `npm install -g @mermaid-js/mermaid-cli`, or leave out --svg and paste the"
            " printed text into a Mermaid viewer"
        )
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"{flow}.mmd"
        source.write_text(text, encoding="utf-8")
        result = subprocess.run(
            [renderer, "--input", str(source), "--output", str(svg)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise click.ClickException(
            f"mmdc failed (exit {result.returncode})" + (f": {detail[-1]}" if detail else "")
        )
    click.echo(f"wrote {svg}")


@click.command("schema")
@click.option(
    "--write",
    is_flag=True,
    help="Regenerate bot/catalogue/stepline.schema.json instead of printing the schema.",
)
def schema_command(write: bool) -> None:
    """Print the JSON Schema of the YAML language (or regenerate the committed file).

    Editors use it to check and complete YAML as it is typed: start a file with
    `# yaml-language-server: $schema=../bot/catalogue/stepline.schema.json`.
    """
    from bot.catalogue import schema

    if not write:
        click.echo(schema.schema_text(), nl=False)
        return
    changed = schema.write_schema(schema.SCHEMA_PATH)
    click.echo(f"{'wrote' if changed else 'unchanged:'} {schema.SCHEMA_PATH}")


__all__ = ["check_command", "diagram_command", "schema_command"]
