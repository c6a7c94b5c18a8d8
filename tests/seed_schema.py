"""Parse the schema contract (the seed markdown) into tables, columns, constraints and indexes.

Used by tests/test_schema.py (database matches the seed) and
tests/test_constraints.py (every seed CHECK is enforced).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

SEED_NAME = "000_823ed397deb5aa3c.txt"


def seed_path() -> Path | None:
    """WATCHPOST_SEED_FILE, else shared/seed/<name> next to the project; None when absent."""
    from django.conf import settings

    candidates = []
    if os.environ.get("WATCHPOST_SEED_FILE"):
        candidates.append(Path(os.environ["WATCHPOST_SEED_FILE"]))
    candidates.append(Path(settings.BASE_DIR).parent / "shared" / "seed" / SEED_NAME)
    candidates.append(Path(settings.BASE_DIR) / "shared" / "seed" / SEED_NAME)
    return next((p for p in candidates if p.is_file()), None)


@dataclass
class Column:
    name: str
    type: str  # e.g. "String(255)", "Integer", "ENUM"
    fk: bool
    nullable: bool | None  # None: the seed does not say
    default: str | None  # the Default cell without backticks; None: no Default column
    description: str


@dataclass
class Index:
    name: str
    columns: list[str]
    method: str  # btree / brin / gin


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    uniques: list[list[str]] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    enums: dict[str, list[str]] = field(default_factory=dict)  # type name -> values


METHODS = {"b-tree": "btree", "btree": "btree", "brin": "brin", "gin": "gin", "gist": "gist", "hash": "hash"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _unquote(cell: str) -> str:
    return cell.replace("`", "").strip()


def parse(text: str) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    current: Table | None = None
    lines = text.splitlines()
    i = 0
    in_sql = False
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\*\*Table Name:\*\*\s*`([^`]+)`", line.strip())
        if m:
            current = tables.setdefault(m.group(1), Table(m.group(1)))
            i += 1
            continue
        if current is None:
            i += 1
            continue
        stripped = line.strip()
        if stripped.startswith("```"):
            in_sql = not in_sql
            i += 1
            continue
        if in_sql:
            code = stripped.split("--")[0].strip()
            if code.startswith("CHECK"):
                current.checks.append(code)
            elif code.startswith("UNIQUE"):
                cols = re.search(r"\(([^)]*)\)", code).group(1)
                current.uniques.append([c.strip() for c in cols.split(",")])
            else:
                e = re.match(r"CREATE TYPE (\w+) AS ENUM \((.*)\);?", code)
                if e:
                    current.enums[e.group(1)] = re.findall(r"'([^']*)'", e.group(2))
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s\-|]+\|$", lines[i + 1].strip()):
            header = [h.lower() for h in _cells(stripped)]
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            if header[0] == "column" and "type" in header:
                for row in rows:
                    cell = dict(zip(header, row, strict=False))
                    raw_type = cell["type"]
                    nullable = cell.get("nullable")
                    current.columns[_unquote(cell["column"])] = Column(
                        name=_unquote(cell["column"]),
                        type=_unquote(raw_type.replace("(FK)", "")),
                        fk="(FK)" in raw_type or bool(re.match(r"(FK to|Reference to)", cell.get("description", ""))),
                        nullable=None if nullable is None else nullable.upper() == "YES",
                        default=None if "default" not in cell else _unquote(cell["default"]),
                        description=cell.get("description", ""),
                    )
            elif header[0] == "index name":
                for row in rows:
                    cell = dict(zip(header, row, strict=False))
                    current.indexes.append(
                        Index(
                            name=_unquote(cell["index name"]),
                            columns=[c.strip() for c in _unquote(cell["columns"]).split(",")],
                            method=METHODS[_unquote(cell["type"]).lower()],
                        )
                    )
            continue
        i += 1
    return tables


def load() -> dict[str, Table] | None:
    path = seed_path()
    return None if path is None else parse(path.read_text(encoding="utf-8"))


def all_enums(tables: dict[str, Table]) -> dict[str, list[str]]:
    return {name: values for t in tables.values() for name, values in t.enums.items()}


def enum_values(tables: dict[str, Table], table: Table, column: str) -> list[str] | None:
    """Values of an ENUM column, or None where the seed does not list them.

    A CREATE TYPE in the table's own section whose name contains the column
    (camera_zone_type_enum -> zone_type); else one from another section named
    after the same area (alert_rules.severity -> alert_severity from "Alerts").
    """
    for type_name, values in table.enums.items():
        if column in type_name:
            return values
    area = table.name.split("_")[0]
    for type_name, values in all_enums(tables).items():
        if type_name.startswith(area + "_") and column in type_name:
            return values
    return None


# --- normalising CHECK expressions (seed text vs pg_get_constraintdef) ---------------------

_CAST = re.compile(r"::[a-z_]+(?: [a-z_]+)*(?:\[\])?")


def _outside_quotes(text: str, fn) -> str:
    parts = re.split(r"('(?:[^']|'')*')", text)
    return "".join(p if p.startswith("'") else fn(p) for p in parts)


def check_atoms(expr: str) -> frozenset[str]:
    """The comparisons of a CHECK as a set of normalised strings: order, casts, parentheses ignored.

    `x IN ('a', 'b')` and PostgreSQL's `x = ANY (ARRAY['a', 'b'])` both become `x IN {a,b}`;
    `(0.0)::double precision` becomes `0.0`.
    """
    expr = expr.strip()
    expr = re.sub(r"^CHECK\s*", "", expr)
    expr = _outside_quotes(expr, lambda p: _CAST.sub("", p))

    def norm_in(match):
        values = sorted(re.findall(r"'((?:[^']|'')*)'", match.group(2)))
        return f"{match.group(1)} IN {{{','.join(values)}}}"

    expr = re.sub(r"\(*(\w+)\)*\s*=\s*ANY\s*\(+ARRAY\[([^\]]*)\]\)*", norm_in, expr)
    expr = re.sub(r"(\w+)\s+IN\s*\(([^)]*)\)", norm_in, expr)
    expr = _outside_quotes(expr, lambda p: p.replace("(", " ").replace(")", " ").replace('"', ""))
    expr = re.sub(r"\s+", " ", expr).strip()
    atoms = re.split(r"\s+(?:AND|OR)\s+", expr)
    return frozenset(a.strip() for a in atoms if a.strip())


def check_columns(expr: str, columns) -> set[str]:
    words = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"'(?:[^']|'')*'", "", expr)))
    return {c for c in columns if c in words}
