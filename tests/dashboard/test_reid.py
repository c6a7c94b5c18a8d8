"""Cross-camera re-identification: pgvector (HNSW) path, exact JSONB path, sync triggers, the page."""

from __future__ import annotations

import importlib
import math
import random

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from dashboard.models import ReidEmbedding
from dashboard.services import reid
from jobs.models import Job
from tests import factories

migration = importlib.import_module("dashboard.migrations.0003_reid_vectors")


def _vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(512)]


def _near(base: list[float], noise: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(v + rng.uniform(-noise, noise), 6) for v in base]


def _cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _embed(camera, embedding):
    det = factories.DetectionFactory(camera=camera)
    factories.ReidEmbeddingFactory(detection=det, embedding=embedding)
    return det


def _vector_rows() -> dict[int, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT detection_id, camera_id FROM reid_vectors")
        return dict(cur.fetchall())


@pytest.fixture
def require_vector(db):
    if not reid.vector_index_available():
        pytest.skip("the pgvector extension is not available on this PostgreSQL server")


@pytest.fixture
def scene(db):
    """A source on the porch; the same person (less and less alike) on the garage and yard cameras."""
    porch = factories.CameraFactory(id="porch", name="Porch")
    garage = factories.CameraFactory(id="garage", name="Garage")
    yard = factories.CameraFactory(id="yard", name="Yard")
    base = _vec(1)
    source = _embed(porch, base)
    same_camera_twin = _embed(porch, base)  # identical but on the source's own camera: never listed
    ranked = [_embed(garage if i % 2 else yard, _near(base, 0.1 * (i + 1), seed=10 + i)) for i in range(6)]
    strangers = [_embed(garage, _vec(100 + i)) for i in range(5)]
    return {"source": source, "base": base, "twin": same_camera_twin, "ranked": ranked, "strangers": strangers}


def _check_ranking(results, scene, limit):
    ids = [r.detection.pk for r in results]
    assert scene["twin"].pk not in ids and scene["source"].pk not in ids
    assert ids[:6] == [d.pk for d in scene["ranked"]]
    assert len(results) == min(limit, 11)
    assert all(r.camera.pk in ("garage", "yard") for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    first = results[0]
    assert first.time == first.detection.detected_at
    embedding = ReidEmbedding.objects.get(detection=first.detection).embedding
    assert first.score == pytest.approx(_cosine(scene["base"], embedding), abs=1e-4)


def test_exact_search_ranks_other_cameras_by_cosine_similarity(scene, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        results = reid.find_similar(scene["source"].pk, limit=20, method="exact")
    _check_ranking(results, scene, 20)


def test_vector_search_matches_the_exact_search(scene, require_vector):
    vector = reid.find_similar(scene["source"].pk, limit=20, method="vector")
    exact = reid.find_similar(scene["source"].pk, limit=20, method="exact")
    _check_ranking(vector, scene, 20)
    assert [r.detection.pk for r in vector] == [r.detection.pk for r in exact]
    for v, e in zip(vector, exact, strict=True):
        assert v.score == pytest.approx(e.score, abs=1e-4)  # float4 vectors vs float8 JSONB


def test_vector_search_uses_the_hnsw_index(scene, require_vector):
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute(
            "EXPLAIN SELECT detection_id FROM reid_vectors WHERE camera_id <> 'porch' "
            "ORDER BY embedding <=> %s::vector LIMIT 20",
            [reid._vector_literal(scene["base"])],
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "idx_reid_vectors_embedding_hnsw" in plan


def test_limit_is_respected(scene):
    assert len(reid.find_similar(scene["source"].pk, limit=3, method="exact")) == 3


def test_auto_uses_the_index_when_present_and_falls_back_without_it(scene, require_vector):
    assert reid.vector_index_available()
    auto = reid.find_similar(scene["source"].pk, method="auto")
    _check_ranking(auto, scene, 20)
    # A server without pgvector: the migration's reverse leaves no table and no triggers
    # (DDL is transactional, so the test's rollback restores them).
    with connection.cursor() as cur:
        for sql in migration.REVERSE_SQL:
            cur.execute(sql)
    assert not reid.vector_index_available()
    _check_ranking(reid.find_similar(scene["source"].pk, method="auto"), scene, 20)
    with pytest.raises(reid.VectorIndexUnavailable, match="exact search"):
        reid.find_similar(scene["source"].pk, method="vector")
    # Writes keep working without the side table.
    _embed(scene["source"].camera, _vec(5))


def test_wrong_length_embedding_is_a_clear_error(db):
    det = _embed(factories.CameraFactory(), _vec(1)[:300])
    with pytest.raises(reid.InvalidEmbedding, match="has 300 values; 512 are expected"):
        reid.find_similar(det.pk)
    with pytest.raises(ValidationError) as exc:
        ReidEmbedding.objects.get(detection=det).full_clean()
    assert "512 are expected" in str(exc.value.message_dict["embedding"])


@pytest.mark.parametrize(
    "embedding, message",
    [
        ({"not": "a list"}, "not a list of numbers"),
        (["x"] * 512, "non-numeric value at position 1"),
        ([0.0] * 512, "all zeros"),
    ],
)
def test_malformed_embeddings_are_refused(db, embedding, message):
    det = _embed(factories.CameraFactory(), embedding)
    with pytest.raises(reid.InvalidEmbedding, match=message):
        reid.find_similar(det.pk, method="exact")


def test_detection_without_embedding(db):
    det = factories.DetectionFactory()
    with pytest.raises(reid.NoEmbedding, match="has no re-id embedding"):
        reid.find_similar(det.pk)


def test_bad_method_and_limit_are_refused(scene):
    with pytest.raises(reid.ReidError, match="Unknown search method"):
        reid.find_similar(scene["source"].pk, method="psychic")
    with pytest.raises(reid.ReidError, match="Limit"):
        reid.find_similar(scene["source"].pk, limit=0)


def test_malformed_rows_do_not_break_the_exact_scan(scene):
    garage = scene["ranked"][0].camera
    _embed(garage, _vec(1)[:100])  # wrong length: skipped
    _embed(garage, ["x"] + _vec(2)[1:])  # a non-number element counts as missing
    results = reid.find_similar(scene["source"].pk, limit=50, method="exact")
    assert [r.detection.pk for r in results][:6] == [d.pk for d in scene["ranked"]]


# --- the pgvector side table stays in sync with the JSONB source of truth ----------------


def test_triggers_keep_the_vector_table_in_sync(require_vector):
    porch = factories.CameraFactory(id="porch")
    yard = factories.CameraFactory(id="yard")
    det = _embed(porch, _vec(1))
    assert _vector_rows() == {det.pk: "porch"}
    emb = ReidEmbedding.objects.get(detection=det)
    emb.embedding = _vec(1)[:10]  # wrong length: dropped from the index, the JSONB row stays
    emb.save()
    assert _vector_rows() == {}
    emb.embedding = _vec(2)
    emb.save()
    assert _vector_rows() == {det.pk: "porch"}
    det.camera = yard
    det.save()
    assert _vector_rows() == {det.pk: "yard"}
    emb.delete()
    assert _vector_rows() == {}
    other = _embed(porch, _vec(3))
    det.delete()
    assert _vector_rows() == {other.pk: "porch"}
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending deferred FK checks
        cur.execute("TRUNCATE reid_embeddings")
    assert _vector_rows() == {}


def test_values_outside_float4_range_are_not_indexed_but_saved(require_vector):
    det = _embed(factories.CameraFactory(), [1e39] + _vec(1)[1:])
    assert ReidEmbedding.objects.filter(detection=det).exists()
    assert _vector_rows() == {}


def test_reindex_job_rebuilds_the_vector_table(require_vector, django_capture_on_commit_callbacks):
    from jobs.services.tracked import enqueue

    porch = factories.CameraFactory(id="porch")
    dets = [_embed(porch, _vec(i)) for i in range(3)]
    _embed(porch, _vec(9)[:5])
    with connection.cursor() as cur:
        cur.execute("DELETE FROM reid_vectors")  # as if rows had bypassed the triggers
    with django_capture_on_commit_callbacks(execute=True):
        job = enqueue("reid_reindex", kwargs={}, created_by="test")
    job = Job.objects.get(pk=job.pk)
    assert job.status == "completed", job.error_message
    assert job.result == {"indexed": 3}
    assert set(_vector_rows()) == {d.pk for d in dets}
    assert reid.find_similar(dets[0].pk, method="vector") == []  # all on one camera


# --- the page ----------------------------------------------------------------------------------


def test_similar_page_lists_other_cameras(operator_client, scene, django_assert_max_num_queries):
    event = factories.EventFactory(camera=scene["ranked"][0].camera)
    factories.EventDetectionFactory(event=event, detection=scene["ranked"][0])
    url = reverse("dashboard:detection_similar", args=[scene["source"].pk])
    with django_assert_max_num_queries(10):
        response = operator_client.get(url, {"method": "exact"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert body.count("<tr>") == 1 + 11  # header + results
    assert "Garage" in body and "Yard" in body
    assert reverse("dashboard:event_detail", args=[event.pk]) in body
    full = operator_client.get(url)
    assert full.status_code == 200 and "<html" in full.content.decode()
    assert len(full.context["results"]) == 11


def test_similar_page_shows_wrong_length_message(viewer_client, db):
    det = _embed(factories.CameraFactory(), _vec(1)[:511])
    response = viewer_client.get(reverse("dashboard:detection_similar", args=[det.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "has 511 values; 512 are expected" in response.content.decode()


def test_similar_page_refuses_unknown_method(operator_client, scene):
    url = reverse("dashboard:detection_similar", args=[scene["source"].pk])
    response = operator_client.get(url, {"method": "guess"})
    assert response.status_code == 400
    assert "Unknown search method" in response.content.decode()


def test_similar_page_for_missing_detection_is_404(operator_client, db):
    assert operator_client.get(reverse("dashboard:detection_similar", args=[999999])).status_code == 404


def test_similar_page_requires_login(client, db):
    response = client.get(reverse("dashboard:detection_similar", args=[1]))
    assert response.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_database_flush_is_not_blocked_by_the_vector_table():
    """transaction=True tests end with a TRUNCATE of every model table; reid_vectors must not refuse it."""
    det = _embed(factories.CameraFactory(), _vec(1))
    if reid.vector_index_available():
        assert _vector_rows() == {det.pk: det.camera_id}
