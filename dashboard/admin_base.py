"""Base classes shared by every app's admin.py.

The Django admin's defaults assume small tables: an exact COUNT(*) for the
paginator (about 1 s over 5M rows), a second COUNT(*) for "N total", and a
select box for every foreign key. Watchpost's time-series tables (logs,
gpu_stats, detections, audit_logs) reach tens of millions of rows, so every
ModelAdmin here derives from `WatchpostModelAdmin`, which swaps those defaults
for ones that cost the same at any table size.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext


def planner_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's row estimate for `queryset` (0.1 ms), or None when there is none.

    Unfiltered: pg_class.reltuples, kept by autovacuum/ANALYZE. Filtered (or a
    table never analysed, reltuples = -1): the top plan node's "Plan Rows" from
    EXPLAIN, which never runs the query.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    query = queryset.query
    unfiltered = (
        not query.where
        and not query.distinct
        and not query.combinator
        and query.group_by is None
        and query.low_mark == 0
        and query.high_mark is None
    )
    with connection.cursor() as cursor:
        if unfiltered:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
            if row and row[0] is not None and row[0] >= 0:
                return int(row[0])
        sql, params = queryset.order_by().query.sql_with_params()
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # drivers that do not decode json
        import json

        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A Paginator whose `count` comes from the planner on big results.

    Below `exact_below` rows the estimate is replaced by the exact number, so
    small tables and narrow filters show true counts. Above it, the count is
    "about N": the last pages may come out empty or short, which is the price of
    not reading millions of rows to draw a page of 100.
    """

    exact_below = 10_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, QuerySet):
            return super().count
        estimate = planner_estimate(qs)
        if estimate is None or estimate < self.exact_below:
            return super().count
        # The planner can also be wildly high (a rare search term on a big table).
        # Counting at most exact_below + 1 rows is bounded work and tells the two apart.
        bounded = qs.order_by()[: self.exact_below + 1].count()
        if bounded <= self.exact_below:
            return bounded
        return max(estimate, bounded)


class WatchpostModelAdmin(admin.ModelAdmin):
    """Base ModelAdmin for every Watchpost model.

    - `paginator`: planner estimates instead of COUNT(*) on big tables.
    - `show_full_result_count = False`: no second COUNT(*) of the unfiltered
      table next to a filtered result ("5 results (5,000,000 total)").
    - `id_search_fields`: a search term that parses as one of these fields'
      values (an integer id, a UUID) is looked up by equality, which an index
      answers; the stock search would cast the column to text and scan.

    The monitoring app hooks auditing in here (save_model / delete_model), so
    every admin change writes an audit row without each app remembering to.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    id_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request):
        # Without search_fields the admin hides the search box; id search needs it.
        return self.search_fields or self.id_search_fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and self.id_search_fields:
            q = Q()
            for path in self.id_search_fields:
                field = get_fields_from_path(self.model, path)[-1]
                try:
                    value = field.to_python(term)
                except ValidationError:
                    continue
                if isinstance(value, int) and not -(2**63) <= value < 2**63:
                    continue
                q |= Q(**{path: value})
            if q:
                return queryset.filter(q), False
            if not self.search_fields:
                return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def action_checkbox(self, obj):
        # The same <input> Django renders, built with format_html: the stock method renders a
        # CheckboxInput through the form template engine, a sixth of a 50-row changelist's time.
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )

    # --- audit trail (monitoring): one audit_logs row per admin add/change/delete ---------
    # The admin wraps each of these in the same transaction as the change, so a
    # rolled-back change leaves no audit row behind.

    def save_model(self, request, obj, form, change):
        from monitoring.services.audit import record_admin_save

        super().save_model(request, obj, form, change)
        record_admin_save(request, obj, form, change)

    def delete_model(self, request, obj):
        from monitoring.services.audit import record_admin_delete

        pk = obj.pk
        super().delete_model(request, obj)
        record_admin_delete(request, obj, pk=pk)

    def save_formset(self, request, form, formset, change):
        """Inline rows (e.g. the feedback on an event's page) are audited like top-level ones."""
        from monitoring.services.audit import record_admin_delete, record_admin_save

        # formset.save() deletes these and clears their primary keys: remember them first.
        deleting = [(f.instance, f.instance.pk) for f in formset.deleted_forms if f.instance.pk is not None]
        super().save_formset(request, form, formset, change)
        created = {id(obj) for obj in formset.new_objects}
        changed = {id(obj) for obj, _ in formset.changed_objects}
        for inline_form in formset.forms:
            obj = inline_form.instance
            if id(obj) in created:
                record_admin_save(request, obj, inline_form, change=False)
            elif id(obj) in changed:
                record_admin_save(request, obj, inline_form, change=True)
        for obj, pk in deleting:
            record_admin_delete(request, obj, pk=pk)

    def delete_queryset(self, request, queryset):
        from monitoring.services.audit import record_admin_bulk_delete

        pks = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        record_admin_bulk_delete(request, queryset.model, pks)


class ReadOnlyModelAdmin(WatchpostModelAdmin):
    """Viewable, never editable: rows written by the system itself (samples, logs, audit trail).

    The change page still opens (read-only, because the user has the view
    permission); add, change and delete answer 403 and the delete action is gone.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    """A history shown under its parent (a job's attempts, logs, transitions): never edited there."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


RECENT_WINDOWS = {
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "24h": ("Last 24 hours", dt.timedelta(days=1)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
}


def recent_filter(field_name: str, title: str = "time"):
    """A list_filter of recent time windows on `field_name`, for the time-series tables.

    `date_hierarchy` runs SELECT DISTINCT date_trunc(...) over a whole month or
    year to draw its links, i.e. it reads every row of the period; on logs or
    gpu_stats that is millions. A `>= now() - window` filter is one index (or
    BRIN) range and costs nothing to draw.
    """

    class RecentFilter(admin.SimpleListFilter):
        parameter_name = f"{field_name}_within"

        def lookups(self, request, model_admin):
            return [(key, label) for key, (label, _) in RECENT_WINDOWS.items()]

        def queryset(self, request, queryset):
            window = RECENT_WINDOWS.get(self.value() or "")
            if window is None:
                return queryset
            return queryset.filter(**{f"{field_name}__gte": timezone.now() - window[1]})

    RecentFilter.title = title
    RecentFilter.__name__ = f"Recent_{field_name}_Filter"
    return RecentFilter
