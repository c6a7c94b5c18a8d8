"""RowUrl: one reverse() per kind of link gives the same URLs as reverse() per row."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from dashboard.rowurls import RowUrl


def test_row_url_matches_reverse_for_uuid_keys():
    keys = [uuid.uuid4() for _ in range(5)]
    edit = RowUrl("alerting:rule_edit")
    action = RowUrl("alerting:alert_action", "acknowledge")
    assert [edit(k) for k in keys] == [reverse("alerting:rule_edit", args=[k]) for k in keys]
    assert [action(k) for k in keys] == [reverse("alerting:alert_action", args=[k, "acknowledge"]) for k in keys]


def test_row_url_matches_reverse_for_integer_keys():
    detail = RowUrl("dashboard:event_detail", key_type=int)
    for key in (1, 42, 9_000_000_000):
        assert detail(key) == reverse("dashboard:event_detail", args=[key])


def test_row_url_refuses_a_key_of_another_type():
    with pytest.raises(TypeError):
        RowUrl("alerting:rule_edit")("../../admin/")
    with pytest.raises(TypeError):
        RowUrl("dashboard:event_detail", key_type=int)(True)
