"""LongSelect draws the same <select> as Django's Select, without the form template engine."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django import forms

from dashboard.forms import LongSelect

CHOICES = [("", "Any rule"), ("a<b", 'R & "1"'), ("42", "Rule 42")]


class _Elements(HTMLParser):
    """Elements as (tag, sorted attributes, text): the markup without whitespace or attribute order."""

    def __init__(self):
        super().__init__()
        self.items = []

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, tuple(sorted(attrs))))

    def handle_data(self, data):
        if data.strip():
            self.items.append(("text", data.strip()))


def _elements(html: str):
    parser = _Elements()
    parser.feed(html)
    return parser.items


@pytest.mark.parametrize("value", ["", "42", None, "not-a-choice"])
def test_long_select_matches_the_stock_select(value):
    attrs = {"class": "filter", "required": True, "disabled": False}
    stock = forms.Select(choices=CHOICES, attrs=attrs).render("rule", value, attrs={"id": "id_rule"})
    ours = LongSelect(choices=CHOICES, attrs=attrs).render("rule", value, attrs={"id": "id_rule"})
    assert _elements(ours) == _elements(stock)


def test_long_select_escapes_values_and_labels():
    html = LongSelect(choices=CHOICES).render("rule", "")
    assert 'value="a&lt;b"' in html
    assert "R &amp; &quot;1&quot;" in html


def test_long_select_falls_back_to_the_stock_widget_for_groups():
    grouped = [("Front", [("a", "A")]), ("Back", [("b", "B")])]
    assert LongSelect(choices=grouped).render("cam", "b") == forms.Select(choices=grouped).render("cam", "b")
