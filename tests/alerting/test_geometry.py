import pytest
from django.core.exceptions import ValidationError

from alerting.models import CameraZone
from alerting.services.geometry import MAX_POINTS, bbox_centre, point_in_polygon, validate_zone_points
from tests import factories

SQUARE = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]


def test_valid_polygon_and_rectangle():
    assert validate_zone_points(SQUARE, "rectangle") == [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5)]
    assert len(validate_zone_points([[0, 0], [1, 0], [0.5, 1]], "polygon")) == 3


@pytest.mark.parametrize(
    "points, shape, message",
    [
        ([[0, 0], [1, 0]], "polygon", "at least 3 points"),
        ([[0, 0], [1.2, 0], [1, 1]], "polygon", "outside the frame"),
        ([[0, 0], [1, 0], [1, -0.1]], "polygon", "outside the frame"),
        ([[0, 0], [0, 0], [1, 1], [0, 1]], "polygon", "are the same"),
        ([[0, 0], [0.5, 0.5], [1, 1]], "polygon", "no area"),
        ([[0, 0], [1, 1], [1, 0], [0, 1]], "polygon", "cross each other"),
        ([[0.1, 0.1], [0.5, 0.1], [0.6, 0.5], [0.1, 0.5]], "rectangle", "horizontal or vertical"),
        ([[0, 0], [1, 0], [0.5, 1]], "rectangle", "exactly 4 points"),
        ([[0, 0], ["a", 0], [1, 1]], "polygon", "pair of numbers"),
        ([[0, 0], [True, 0], [1, 1]], "polygon", "pair of numbers"),
        ({"x": 1}, "polygon", "list of [x, y] points"),
        ([[0, 0], [float("nan"), 0], [1, 1]], "polygon", "not a number"),
    ],
)
def test_invalid_zones_are_rejected_with_a_reason(points, shape, message):
    with pytest.raises(ValidationError) as exc:
        validate_zone_points(points, shape)
    assert message in " ".join(exc.value.messages)


def test_too_many_points_are_refused_before_the_quadratic_check():
    points = [[i / (MAX_POINTS + 1), (i % 2) * 0.5] for i in range(MAX_POINTS + 1)]
    with pytest.raises(ValidationError, match="at most"):
        validate_zone_points(points)


def test_point_in_polygon_counts_the_boundary_as_inside():
    assert point_in_polygon(0.3, 0.3, SQUARE)
    assert point_in_polygon(0.1, 0.3, SQUARE)  # on an edge
    assert point_in_polygon(0.5, 0.5, SQUARE)  # on a vertex
    assert not point_in_polygon(0.6, 0.3, SQUARE)
    concave = [[0, 0], [1, 0], [1, 1], [0.5, 0.4], [0, 1]]
    assert not point_in_polygon(0.5, 0.8, concave)
    assert point_in_polygon(0.5, 0.2, concave)


def test_bbox_centre_is_normalised_by_the_frame_size():
    assert bbox_centre(800, 400, 200, 400, 1920, 1080) == pytest.approx((900 / 1920, 600 / 1080))
    assert bbox_centre(1900, 1000, 400, 400, 1920, 1080) == (1.0, 1.0)  # clamped


@pytest.mark.django_db
def test_zone_model_clean_names_each_field():
    zone = CameraZone(
        id="z", camera=factories.CameraFactory(), name="Z", coordinates=[[0, 0], [1, 1], [1, 0], [0, 1]],
        shape="polygon", color="red", priority=-1,
    )  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        zone.full_clean()
    assert set(exc.value.message_dict) >= {"coordinates", "color", "priority"}
