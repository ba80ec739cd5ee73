"""Read a folder of YAML into a `Catalogue`: all of it, checked, or a `CatalogueError`.

Every file (`*.yaml`, `*.yml`, recursively, in sorted order) may hold several `---` documents;
a document's first key names its kind. Each document is validated by its pydantic model, the
documents are merged, and lint runs over the whole. Every problem, of any file, is collected
with its `file:line:col`; a catalogue is returned only when there is none. A file over 1 MB,
YAML nested over 100 levels and aliases expanding a document beyond 200,000 values are
problems too, found before they cost time or memory (`yaml_bounds`).

One run reports every problem it can: a YAML syntax error costs only its own document (the
file is read again from the next `---`); a document that fails its model is linted without the
parts its errors are about (`salvage`); and what broken documents define is not reported
unknown where it is used (`broken`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.catalogue.broken import LIST_KINDS, intended, written
from bot.catalogue.broken import names as broken_names
from bot.catalogue.catalogue import Catalogue, CatalogueError, FlowSource, Problem
from bot.catalogue.explain import explain, show_value, suggest
from bot.catalogue.lint import lint
from bot.catalogue.models import (
    DOCUMENT_KINDS,
    BroadcastDoc,
    EventDoc,
    FieldDef,
    FieldsDoc,
    FlowDoc,
    KeywordRule,
    KeywordsDoc,
    LinkDef,
    LinksDoc,
    RichMenuDoc,
    SegmentDoc,
    SequenceDoc,
    TagsDoc,
)
from bot.catalogue.salvage import salvage
from bot.catalogue.source import Document, Locator, key_mark, mark_of, place, plain
from bot.catalogue.yaml_bounds import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    BoundedComposer,
    BoundedScanner,
    bounds_problem,
    file_too_large,
)

YAML_SUFFIXES = (".yaml", ".yml")
# Document kinds the YAML contract names but later issues will build.
PLANNED_KINDS: tuple[str, ...] = ()
KINDS_TEXT = ", ".join(DOCUMENT_KINDS)
LIST_KINDS_TEXT = "fields, tags, keywords and links"

_START_MARKER = re.compile(r"^---(?:\s|$)")
_END_MARKER = re.compile(r"^\.\.\.(?:\s|$)")


# ---------------------------------------------------------------------------- files


def yaml_files(folder: Path) -> list[Path]:
    """The YAML files of `folder` and its subfolders, sorted; hidden ones are skipped."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


class FolderHash:
    """The content hash of a flows folder: every YAML file's path (relative to the folder)
    and bytes, in `yaml_files` order. The same files give the same hash on any host; it names
    a catalogue version (`catalogue_versions.content_hash`)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, relative: str, data: bytes | None) -> None:
        # Length-prefixed, so no two different folders can run together into the same bytes.
        name = relative.encode("utf-8")
        size = b"unreadable" if data is None else str(len(data)).encode()
        self._digest.update(b"%d:%s:%s\n" % (len(name), name, size))
        self._digest.update(data or b"")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def folder_hash(folder: Path) -> str:
    """The content hash of what `load_catalogue(folder)` would read now (its files' bytes
    only: nothing is parsed), to tell cheaply whether a folder holds a given version."""
    folder = Path(folder)
    digest = FolderHash()
    if folder.is_dir():
        for path in yaml_files(folder):
            data, _ = read_bytes(path, str(path))
            digest.add(path.relative_to(folder).as_posix(), data)
    return digest.hexdigest()


def read_bytes(path: Path, file: str) -> tuple[bytes | None, list[Problem]]:
    """The file's bytes, or the reason it cannot be read (or is too large to)."""
    try:
        with path.open("rb") as stream:
            # Never more than the limit and one byte, whatever size the file says it is.
            data = stream.read(MAX_FILE_BYTES + 1)
            too_large = file_too_large(max(len(data), os.fstat(stream.fileno()).st_size))
    except OSError as exc:
        return None, [Problem(file, 1, 1, f"cannot read the file: {exc.strerror or exc}")]
    if too_large:
        return None, [Problem(file, 1, 1, too_large)]
    return data, []


def read_text(path: Path, file: str) -> tuple[str | None, list[Problem]]:
    """The file's text, or the reason it cannot be read as UTF-8."""
    data, problems = read_bytes(path, file)
    if data is None:
        return None, problems
    return decode_text(data, file)


def decode_text(data: bytes, file: str) -> tuple[str | None, list[Problem]]:
    """The bytes as UTF-8 text, or where they are not."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")) + 1
        bad = data[exc.start : exc.start + 1].hex()
        return None, [
            Problem(
                file,
                line,
                col,
                f"the file is not UTF-8 text (byte 0x{bad}); save it with UTF-8 encoding",
            )
        ]
    return text.removeprefix("\ufeff"), []


# ---------------------------------------------------------------------------- documents


@dataclass
class Region:
    """The lines (0-based, end exclusive) of one document; `marker` is its `---` line."""

    start: int
    end: int
    marker: int | None


def document_regions(text: str) -> list[Region]:
    """Split a file into documents the way YAML does (`---` starts one, `...` ends one)."""
    lines = text.splitlines()
    regions: list[Region] = []
    current: Region | None = None
    for number, line in enumerate(lines):
        if _START_MARKER.match(line):
            if current is not None:
                current.end = number
                regions.append(current)
            current = Region(number, len(lines), number)
        elif _END_MARKER.match(line):
            if current is not None:
                current.end = number
                regions.append(current)
            current = None
        elif current is None and _is_content(line):
            current = Region(number, len(lines), None)
    if current is not None:
        regions.append(current)
    return regions


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#") and not line.startswith("%")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner = BoundedScanner  # `[[[[…` beyond MAX_DEPTH: refused as it is read
    yaml.Composer = BoundedComposer  # aliases expanding beyond a budget: refused
    yaml.max_depth = MAX_DEPTH
    return yaml


def yaml_problem(exc: YAMLError, file: str) -> Problem:
    """A YAML syntax error in plain words, at the place the parser stopped."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "").strip()
        context = (exc.context or "").strip()
        line = mark.line + 1 if mark is not None else 1
        col = mark.column + 1 if mark is not None else 1
        message = bounds_problem(exc) or _syntax_message(exc, problem, context)
        return Problem(file, line, col, message)
    return Problem(file, 1, 1, f"YAML syntax error: {exc}")


def _syntax_message(exc: MarkedYAMLError, problem: str, context: str) -> str:
    duplicate = re.match(r'found duplicate key "(.*)" with value', problem)
    if duplicate:
        first = ""
        if exc.context_mark is not None:
            first = f" in the mapping that starts at line {exc.context_mark.line + 1}"
        return f"duplicate key '{duplicate.group(1)}'{first}"
    unclosed = re.match(r"expected ',' or '([\]}])', but got", problem)
    if unclosed and exc.context_mark is not None:
        opening = "[" if unclosed.group(1) == "]" else "{"
        mark = exc.context_mark
        return (
            f"YAML syntax error: the '{opening}' at line {mark.line + 1} column {mark.column + 1}"
            f" is never closed with '{unclosed.group(1)}'"
        )
    if "mapping values are not allowed here" in problem:
        return "YAML syntax error: unexpected ':' (put text that contains ': ' in quotes)"
    if "cannot start any token" in problem and "'\\t'" in problem:
        return "YAML syntax error: a tab character; indent with spaces"
    if "cannot start any token" in problem:
        return f"YAML syntax error: {problem} (put the text in quotes)"
    if "found undefined alias" in problem:
        return f"YAML syntax error: {problem}"
    where = ""
    if exc.context_mark is not None and context:
        where = f" ({context} that starts at line {exc.context_mark.line + 1})"
    elif context:
        where = f" ({context})"
    return f"YAML syntax error: {problem}{where}"


@dataclass
class Parsed:
    """The documents, every problem, and the names that documents with problems define.

    A document with problems is in `documents` only if `salvage` could keep part of it (its
    `pruned` is set): it is linted, never merged. It still defines its names (`broken`, read
    from the YAML as written, see `bot.catalogue.broken`), so that a typo in a flow does not
    also make every `start_flow` of it an "unknown flow"; when they cannot be told, no name of
    that kind is reported unknown (`unknowable`).
    """

    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    broken: dict[str, set[str]] = field(default_factory=dict)
    unknowable: set[str] = field(default_factory=set)
    content_hash: str = ""  # of the bytes read (see `FolderHash`)

    def extend(self, other: Parsed) -> None:
        self.documents.extend(other.documents)
        self.problems.extend(other.problems)
        for kind, names in other.broken.items():
            self.broken.setdefault(kind, set()).update(names)
        self.unknowable |= other.unknowable

    def define(self, kinds: list[tuple[str, Any]]) -> None:
        """Note what a document with problems defines (see `intended` and `written`)."""
        for kind, value in kinds:
            defined = broken_names(kind, value)
            if defined is None:
                self.unknowable.add(kind)
            else:
                self.broken.setdefault(kind, set()).update(defined)


def _load(
    text: str, regions: list[Region], file: str
) -> tuple[list[tuple[Any, int]], list[Problem], list[int]]:
    """Every document YAML can read with the index of its region, the syntax errors, and the
    regions of the documents it cannot read.

    A syntax error costs only its own document: reading starts again at the next `---` (YAML
    ends a document there whatever is open: a bracket, a quote), with the lines before it left
    blank so that positions stay those of the file.
    """
    nodes: list[tuple[Any, int]] = []
    problems: list[Problem] = []
    unreadable: list[int] = []
    lines = text.splitlines(keepends=True)
    start = 0  # the region reading starts at
    while start < max(len(regions), 1):
        first = regions[start].start if start else 0
        count = 0
        try:
            for node in _yaml().load_all("\n" * first + "".join(lines[first:])):
                nodes.append((node, start + count))
                count += 1
            break
        except YAMLError as exc:
            problems.append(yaml_problem(exc, file))
            failed = max(start, _region_of(exc, regions))
            unreadable.extend(range(min(start + count, failed), failed + 1))
            start = failed + 1
    return nodes, problems, [i for i in unreadable if i < len(regions)]


def _region_of(exc: YAMLError, regions: list[Region]) -> int:
    """The region of the document a syntax error is in (not the one whose `---` ended it)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line if mark is not None else 0
    index = max((i for i, r in enumerate(regions) if r.start <= line), default=0)
    if index and regions[index].marker == line:
        index -= 1
    return index


def parse_documents(text: str, file: str) -> Parsed:
    """Every document of one file's text, validated by its model."""
    parsed = Parsed()
    documents = parsed.documents
    regions = document_regions(text)
    loaded, problems, unreadable = _load(text, regions, file)
    parsed.problems = problems
    if not loaded and not problems:
        message = "the file is empty" if not text.strip() else "the file holds no YAML document"
        problems.append(
            Problem(file, 1, 1, f"{message} (expected a document such as 'flow: name')")
        )
    lines = text.splitlines()
    for index in unreadable:
        parsed.define(written(lines[regions[index].start : regions[index].end]))
    for node, index in loaded:
        region = regions[index] if index < len(regions) else None
        start = mark_of(node)
        if start is not None and (region is None or not region.start <= start[0] < region.end):
            region = next((r for r in regions if r.start <= start[0] < r.end), None)
        found_documents, found = _document(node, region, text, file)
        problems.extend(found)
        documents.extend(found_documents)
        if found and isinstance(node, dict):
            parsed.define(intended(node))
    return parsed


def _document(
    node: Any, region: Region | None, text: str, file: str
) -> tuple[list[Document], list[Problem]]:
    """A document's models and problems; with problems, what `salvage` could keep of it."""
    start = mark_of(node)
    if start is None:
        line = region.start if region is not None else 0
        start = (line, 0)
    if node is None or (isinstance(node, dict) and not node):
        return [], [Problem(file, start[0] + 1, start[1] + 1, "empty document")]
    if not isinstance(node, CommentedMap):
        return [], [
            Problem(
                file,
                start[0] + 1,
                start[1] + 1,
                f"a document must be a mapping that starts with one of: {KINDS_TEXT}"
                f" (got {show_value(plain(node))})",
            )
        ]
    kind = next(iter(node))
    kmark = key_mark(node, kind) or start
    line, col = kmark[0] + 1, kmark[1] + 1
    if kind in PLANNED_KINDS:
        return [], [Problem(file, line, col, f"document kind '{kind}' is not supported yet")]
    if not isinstance(kind, str) or kind not in DOCUMENT_KINDS:
        return [], [Problem(file, line, col, _unknown_kind(kind, node))]
    end = region.end if region is not None else len(text.splitlines())
    source = "\n".join(text.splitlines()[start[0] : end]).rstrip() + "\n"
    locator = Locator(file, node, start)
    keys = [kind] if kind not in LIST_KINDS else list(node)
    # `fields`, `tags`, `keywords` and `links` may share one document (as in DESIGN.md).
    documents: list[Document] = []
    problems: list[Problem] = []
    for key in keys:
        if kind in LIST_KINDS and key not in LIST_KINDS:
            problems.append(locator.problem([key], _not_a_list_kind(key), key=True))
            continue
        model = DOCUMENT_KINDS[key]
        data = plain(node) if key not in LIST_KINDS else {key: plain(node[key])}
        kline, kcol = (line, col) if key == kind else locator.at([key], key=True)
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            problems.extend(explain(exc, model, locator))
            kept = salvage(model, data, locator, exc)
            problems.extend(kept.problems)
            if kept.model is not None:
                doc = Document(file, key, node, kept.model, kline, kcol, source, kept.pruned)
                documents.append(doc)
            continue
        documents.append(Document(file, key, node, parsed, kline, kcol, source))
    return documents, problems


def _not_a_list_kind(key: Any) -> str:
    if key in DOCUMENT_KINDS or key in PLANNED_KINDS:
        return f"'{key}' starts a document of its own: put a '---' line before it"
    hint = suggest(key, list(LIST_KINDS))
    return f"unknown key '{key}'{hint or f' (this document may hold {LIST_KINDS_TEXT})'}"


def _unknown_kind(kind: Any, node: CommentedMap) -> str:
    elsewhere = [k for k in node if k in DOCUMENT_KINDS or k in PLANNED_KINDS]
    if elsewhere:
        return f"a document must start with its kind: put '{elsewhere[0]}' first (got '{kind}')"
    hint = suggest(kind, [*DOCUMENT_KINDS, *PLANNED_KINDS])
    return (
        f"unknown document kind '{kind}'{hint or f'; a document starts with one of: {KINDS_TEXT}'}"
    )


def load_documents(folder: Path) -> Parsed:
    """Every document of every YAML file of `folder`, and every problem found on the way."""
    folder = Path(folder)
    result = Parsed()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        result.problems.append(Problem(str(folder), 1, 1, f"the flows folder {what}"))
        return result
    files = yaml_files(folder)
    if not files:
        result.problems.append(Problem(str(folder), 1, 1, "the flows folder holds no .yaml files"))
        return result
    digest = FolderHash()
    for path in files:
        file = str(path)
        # Hashed from the very bytes parsed: a file changing meanwhile cannot give a
        # catalogue of one version under the hash of another.
        data, found = read_bytes(path, file)
        digest.add(path.relative_to(folder).as_posix(), data)
        text = None
        if data is not None:
            text, found = decode_text(data, file)
        result.problems.extend(found)
        if text is not None:
            result.extend(parse_documents(text, file))
    result.content_hash = digest.hexdigest()
    return result


# ---------------------------------------------------------------------------- merging


def merge(
    documents: list[Document], folder: Path | None = None, content_hash: str = ""
) -> tuple[Catalogue, list[Problem]]:
    """One catalogue from many documents; things defined twice are problems."""
    problems: list[Problem] = []
    fields: dict[str, FieldDef] = {}
    field_home: dict[str, Document] = {}
    tags: list[str] = []
    flows: dict[str, FlowDoc] = {}
    flow_sources: dict[str, FlowSource] = {}
    flow_home: dict[str, Document] = {}
    keywords: list[KeywordRule] = []
    links: dict[str, LinkDef] = {}
    link_home: dict[str, Document] = {}
    events: dict[str, EventDoc] = {}
    event_home: dict[str, Document] = {}
    sequences: dict[str, SequenceDoc] = {}
    sequence_home: dict[str, Document] = {}
    segments: dict[str, SegmentDoc] = {}
    broadcasts: dict[str, BroadcastDoc] = {}
    rich_menus: dict[str, RichMenuDoc] = {}
    named_home: dict[tuple[str, str], Document] = {}
    for doc in documents:
        model = doc.model
        loc = doc.locator
        if isinstance(model, FieldsDoc):
            for name, definition in model.fields.items():
                if name in fields:
                    first = place(field_home[name], ["fields", name], doc.file, key=True)
                    problems.append(
                        loc.problem(
                            ["fields", name],
                            f"field '{name}' is already defined at {first}",
                            key=True,
                        )
                    )
                    continue
                fields[name] = definition
                field_home[name] = doc
        elif isinstance(model, TagsDoc):
            tags.extend(t for t in model.tags if t not in tags)
        elif isinstance(model, FlowDoc):
            name = model.flow
            if name in flows:
                first = place(flow_home[name], ["flow"], doc.file)
                problems.append(
                    loc.problem(["flow"], f"flow '{name}' is already defined at {first}")
                )
                continue
            flows[name] = model
            flow_home[name] = doc
            flow_sources[name] = FlowSource(doc.text, doc.file, doc.line)
        elif isinstance(model, EventDoc):
            name = model.event
            if name in events:
                first = place(event_home[name], ["event"], doc.file)
                problems.append(
                    loc.problem(["event"], f"event '{name}' is already defined at {first}")
                )
                continue
            events[name] = model
            event_home[name] = doc
        elif isinstance(model, SequenceDoc):
            name = model.sequence
            if name in sequences:
                first = place(sequence_home[name], ["sequence"], doc.file)
                problems.append(
                    loc.problem(["sequence"], f"sequence '{name}' is already defined at {first}")
                )
                continue
            sequences[name] = model
            sequence_home[name] = doc
        elif isinstance(model, SegmentDoc | BroadcastDoc | RichMenuDoc):
            kind, name = doc.kind, getattr(model, doc.kind)
            named: dict[str, Any] = (
                segments
                if isinstance(model, SegmentDoc)
                else broadcasts
                if isinstance(model, BroadcastDoc)
                else rich_menus
            )
            if name in named:
                first = place(named_home[(kind, name)], [kind], doc.file)
                problems.append(
                    loc.problem([kind], f"{kind} '{name}' is already defined at {first}")
                )
                continue
            named[name] = model
            named_home[(kind, name)] = doc
        elif isinstance(model, KeywordsDoc):
            keywords.extend(model.keywords)
        elif isinstance(model, LinksDoc):
            for name, link in model.links.items():
                if name in links:
                    first = place(link_home[name], ["links", name], doc.file, key=True)
                    problems.append(
                        loc.problem(
                            ["links", name],
                            f"link '{name}' is already defined at {first}",
                            key=True,
                        )
                    )
                    continue
                links[name] = link
                link_home[name] = doc
    catalogue = Catalogue(
        fields=fields,
        tags=tags,
        flows=flows,
        flow_sources=flow_sources,
        keywords=keywords,
        links=links,
        events=events,
        sequences=sequences,
        segments=segments,
        broadcasts=broadcasts,
        rich_menus=rich_menus,
        folder=folder,
        content_hash=content_hash,
    )
    return catalogue, problems


# ---------------------------------------------------------------------------- entry points


def check_folder(folder: Path) -> tuple[Catalogue | None, list[Problem]]:
    """(catalogue, its warnings) when it loads, else (None, every problem found, warnings
    too)."""
    folder = Path(folder)
    parsed = load_documents(folder)
    problems = parsed.problems
    whole = [doc for doc in parsed.documents if doc.pruned is None]
    catalogue, found = merge(whole, folder, parsed.content_hash)
    problems.extend(found)
    problems.extend(lint(parsed.documents, catalogue, parsed.broken, parsed.unknowable))
    if any(not problem.warning for problem in problems):
        return None, sorted(set(problems))
    return catalogue, sorted(set(problems))


def load_catalogue(folder: Path) -> Catalogue:
    """The whole catalogue of `folder`, or `CatalogueError` with every problem (never half)."""
    catalogue, problems = check_folder(folder)
    if catalogue is None:
        raise CatalogueError([problem for problem in problems if not problem.warning])
    return catalogue


def parse_flow_document(text: str, file: str = "<flow>") -> FlowDoc:
    """One flow document's own text (as kept in `FlowSource.text`) → `FlowDoc`.

    Used to rebuild a stored older version of a flow; raises `CatalogueError`.
    """
    parsed = parse_documents(text, file)
    documents, problems = parsed.documents, parsed.problems
    if not problems:
        flows = [d for d in documents if isinstance(d.model, FlowDoc)]
        if len(documents) != 1 or len(flows) != 1:
            problems = [Problem(file, 1, 1, "expected exactly one flow document")]
        else:
            return flows[0].model  # type: ignore[return-value]
    raise CatalogueError(problems)
