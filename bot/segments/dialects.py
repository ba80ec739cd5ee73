"""What differs between SQLite and PostgreSQL: SQL functions compiled per dialect (a JSON
value as a string or a number, text in code-point order), and JIT off for one-off counts on
PostgreSQL. Any other dialect is a CompileError.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Float, Text


class JsonString(FunctionElement[str]):
    """A JSON value's text if it is a JSON string, else NULL."""

    type = Text()
    inherit_cache = True
    name = "json_string"


class JsonNumber(FunctionElement[float]):
    """A JSON number, or a boolean as 1/0 (Python's `True == 1`), else NULL."""

    type = Float()
    inherit_cache = True
    name = "json_number"


class CodePointOrder(FunctionElement[str]):
    """Text ordered by code point, as Python orders str (PostgreSQL: the "C" collation)."""

    type = Text()
    inherit_cache = True
    name = "code_point_order"


def _argument(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(JsonString, "postgresql")
def _json_string_pg(element: JsonString, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return f"(CASE WHEN json_typeof({x}) = 'string' THEN {x} #>> '{{}}' END)"


@compiles(JsonString, "sqlite")
def _json_string_sqlite(element: JsonString, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return f"(CASE WHEN json_type({x}) = 'text' THEN json_extract({x}, '$') END)"


@compiles(JsonNumber, "postgresql")
def _json_number_pg(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return (
        f"(CASE json_typeof({x}) WHEN 'number' THEN CAST({x} #>> '{{}}' AS DOUBLE PRECISION)"
        f" WHEN 'boolean' THEN CASE WHEN {x} #>> '{{}}' = 'true' THEN 1.0 ELSE 0.0 END END)"
    )


@compiles(JsonNumber, "sqlite")
def _json_number_sqlite(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return (
        f"(CASE WHEN json_type({x}) IN ('integer', 'real', 'true', 'false')"
        f" THEN json_extract({x}, '$') END)"
    )


@compiles(CodePointOrder, "postgresql")
def _code_point_order_pg(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({_argument(element, compiler, **kw)} COLLATE "C")'


@compiles(CodePointOrder, "sqlite")
def _code_point_order_sqlite(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return _argument(element, compiler, **kw)  # BINARY: UTF-8 bytes order as code points


@compiles(JsonString)
@compiles(JsonNumber)
@compiles(CodePointOrder)
def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"segments support SQLite and PostgreSQL, not {compiler.dialect.name}")


def without_jit(session_or_connection: Session | Connection) -> None:
    """PostgreSQL compiles a costly-looking query to machine code first (JIT); for a count
    that runs once, that costs ~60 ms at 1,000,000 friends and saves nothing. Off for the
    rest of this transaction only."""
    bind = (
        session_or_connection.get_bind()
        if isinstance(session_or_connection, Session)
        else session_or_connection
    )
    if bind.dialect.name == "postgresql":
        session_or_connection.execute(text("SET LOCAL jit = off"))
