"""Explanations written under the results: what stands in the way where a target is missed."""

from __future__ import annotations


def explain(ds, info, results) -> list[str]:
    lines = []
    for r in results:
        if r.met is False and r.extra.get("explanation"):
            lines.append(f"- **{r.name}**: {r.extra['explanation']}")
    if ds.embeddings_note:
        lines.append(f"- **Re-id embeddings**: {ds.embeddings_note}")
    return lines
