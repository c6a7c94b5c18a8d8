"""Zone geometry: validation of normalised polygons and point-in-polygon tests."""

from __future__ import annotations

from numbers import Real

from django.core.exceptions import ValidationError

Point = tuple[float, float]

# Validation is O(n^2) in the number of edges; a zone drawn by hand never needs more.
MAX_POINTS = 100


def _as_points(raw) -> list[Point]:
    if not isinstance(raw, (list, tuple)):
        raise ValidationError("Coordinates must be a list of [x, y] points.")
    points: list[Point] = []
    for i, p in enumerate(raw, start=1):
        if (
            not isinstance(p, (list, tuple))
            or len(p) != 2
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in p)
        ):
            raise ValidationError(f"Point {i} must be a pair of numbers [x, y].")
        x, y = float(p[0]), float(p[1])
        if x != x or y != y:  # NaN
            raise ValidationError(f"Point {i} is not a number.")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValidationError(f"Point {i} ({x:g}, {y:g}) lies outside the frame; x and y must be within [0, 1].")
        points.append((x, y))
    return points


def polygon_area(points: list[Point]) -> float:
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))) / 2


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, c: Point) -> bool:
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def _segments_intersect(p1: Point, p2: Point, p3: Point, p4: Point) -> bool:
    d1, d2 = _orient(p3, p4, p1), _orient(p3, p4, p2)
    d3, d4 = _orient(p1, p2, p3), _orient(p1, p2, p4)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(p3, p4, p1))
        or (d2 == 0 and _on_segment(p3, p4, p2))
        or (d3 == 0 and _on_segment(p1, p2, p3))
        or (d4 == 0 and _on_segment(p1, p2, p4))
    )


def is_self_intersecting(points: list[Point]) -> bool:
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            # Adjacent edges share a vertex by construction; skip them.
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if _segments_intersect(*edges[i], *edges[j]):
                return True
    return False


def _collinear(points: list[Point]) -> bool:
    a = points[0]
    b = next((p for p in points[1:] if p != a), None)
    return b is None or all(abs(_orient(a, b, c)) <= 1e-12 for c in points)


def validate_zone_points(raw, shape: str = "polygon") -> list[Point]:
    """Return the points as floats or raise ValidationError with a message naming the problem."""
    if isinstance(raw, (list, tuple)) and len(raw) > MAX_POINTS:
        raise ValidationError(f"A zone may have at most {MAX_POINTS} points (got {len(raw)}).")
    points = _as_points(raw)
    if len(points) < 3:
        raise ValidationError("A zone needs at least 3 points.")
    n = len(points)
    for i in range(n):
        if points[i] == points[(i + 1) % n]:
            raise ValidationError(f"Points {i + 1} and {(i + 1) % n + 1} are the same; remove the repeated point.")
    crossing = is_self_intersecting(points)
    # A bow-tie's two lobes cancel out to zero signed area; report the crossing, not "no area".
    if crossing and not _collinear(points):
        raise ValidationError("The zone's edges cross each other; reorder the points.")
    if polygon_area(points) <= 1e-9:
        raise ValidationError("The zone has no area (its points lie on one line).")
    if shape == "rectangle":
        if n != 4:
            raise ValidationError("A rectangle has exactly 4 points.")
        for i in range(4):
            a, b = points[i], points[(i + 1) % 4]
            if a[0] != b[0] and a[1] != b[1]:
                raise ValidationError("A rectangle's edges must be horizontal or vertical.")
    return points


def point_in_polygon(x: float, y: float, points) -> bool:
    """Ray casting; points on the boundary count as inside."""
    n = len(points)
    inside = False
    j = n - 1
    for i in range(n):
        xi, yi = points[i]
        xj, yj = points[j]
        if _orient((xi, yi), (xj, yj), (x, y)) == 0 and _on_segment((xi, yi), (xj, yj), (x, y)):
            return True
        if (yi > y) != (yj > y):
            x_cross = (xj - xi) * (y - yi) / (yj - yi) + xi
            if x < x_cross:
                inside = not inside
        j = i
    return inside


def bbox_centre(x: float, y: float, width: float, height: float, image_width: float, image_height: float) -> Point:
    """Centre of a pixel bounding box, normalised to [0, 1] by the frame size (clamped to the frame)."""
    cx = (x + width / 2) / image_width if image_width else 0.0
    cy = (y + height / 2) / image_height if image_height else 0.0
    return min(max(cx, 0.0), 1.0), min(max(cy, 0.0), 1.0)


def bounds(points) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)
