"""Uploads and downloads stay inside their folders (dashboard/files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.exceptions import SuspiciousFileOperation
from hypothesis import given
from hypothesis import strategies as st

from dashboard.files import ensure_under, safe_join_under


@pytest.fixture
def export_dir(tmp_path) -> Path:
    base = tmp_path / "exports"
    base.mkdir()
    (tmp_path / "secret.txt").write_text("not for download")
    return base


def test_safe_join_accepts_plain_and_nested_names(export_dir):
    assert safe_join_under(export_dir, "events-2024.csv") == export_dir.resolve() / "events-2024.csv"
    assert safe_join_under(str(export_dir), "2024/05/a.zip") == export_dir.resolve() / "2024" / "05" / "a.zip"
    # A dot segment that stays inside is harmless.
    assert safe_join_under(export_dir, "./a.csv") == export_dir.resolve() / "a.csv"


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "a/../../secret.txt",
        "..",
        "/etc/passwd",
        "//etc/passwd",
        "C:\\Windows\\win.ini",
        "C:/Windows/win.ini",
        "..\\secret.txt",
        "\\\\server\\share\\x",
        "a.csv\x00.png",
        "",
        "   ",
        ".",
        "a/..",
    ],
)
def test_safe_join_refuses_names_that_escape(export_dir, name):
    with pytest.raises(SuspiciousFileOperation):
        safe_join_under(export_dir, name)


@pytest.mark.parametrize("name", [None, b"a.csv", 3, ["a.csv"]])
def test_safe_join_refuses_non_text_names(export_dir, name):
    with pytest.raises(SuspiciousFileOperation):
        safe_join_under(export_dir, name)


def test_safe_join_refuses_symlink_pointing_out_of_the_folder(export_dir):
    (export_dir / "innocent.csv").symlink_to(export_dir.parent / "secret.txt")
    (export_dir / "linkdir").symlink_to(export_dir.parent)
    with pytest.raises(SuspiciousFileOperation):
        safe_join_under(export_dir, "innocent.csv")
    with pytest.raises(SuspiciousFileOperation):
        safe_join_under(export_dir, "linkdir/secret.txt")


def test_safe_join_allows_symlink_that_stays_inside(export_dir):
    (export_dir / "real.csv").write_text("x")
    (export_dir / "alias.csv").symlink_to(export_dir / "real.csv")
    assert safe_join_under(export_dir, "alias.csv") == export_dir.resolve() / "real.csv"


def test_safe_join_works_when_the_base_itself_is_a_symlink(tmp_path, export_dir):
    link = tmp_path / "exports-link"
    link.symlink_to(export_dir)
    assert safe_join_under(link, "a.csv") == export_dir.resolve() / "a.csv"


def test_ensure_under_accepts_stored_absolute_and_relative_paths(export_dir):
    target = export_dir / "e.csv"
    target.write_text("x")
    assert ensure_under(export_dir, str(target)) == target.resolve()
    assert ensure_under(export_dir, target) == target.resolve()
    assert ensure_under(export_dir, "e.csv") == target.resolve()


@pytest.mark.parametrize(
    "stored",
    ["/etc/passwd", "../secret.txt", "", "e.csv\x00", "{base}/../secret.txt", "{base}", "{base}-other/x.csv"],
)
def test_ensure_under_refuses_stored_paths_outside(export_dir, stored):
    stored = stored.replace("{base}", str(export_dir))
    with pytest.raises(SuspiciousFileOperation):
        ensure_under(export_dir, stored)


def test_ensure_under_refuses_symlink_out(export_dir):
    (export_dir / "x.csv").symlink_to(export_dir.parent / "secret.txt")
    with pytest.raises(SuspiciousFileOperation):
        ensure_under(export_dir, str(export_dir / "x.csv"))


@given(name=st.text(max_size=60))
def test_safe_join_never_escapes_for_any_text(tmp_path_factory, name):
    base = tmp_path_factory.getbasetemp() / "hyp-exports"
    base.mkdir(exist_ok=True)
    try:
        result = safe_join_under(base, name)
    except SuspiciousFileOperation:
        return
    except ValueError as exc:  # pragma: no cover - must not happen
        pytest.fail(f"{name!r} raised {exc!r} instead of SuspiciousFileOperation")
    assert result.is_relative_to(base.resolve()) and result != base.resolve()
    assert os.path.commonpath([result, base.resolve()]) == str(base.resolve())
