from django.db import models

from dashboard.choices import Severity  # noqa: F401  (alert_severity shares the four levels)


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISMISSED = "dismissed", "Dismissed"


class ZoneType(models.TextChoices):
    ENTRY_POINT = "entry_point", "Entry point"
    DRIVEWAY = "driveway", "Driveway"
    SIDEWALK = "sidewalk", "Sidewalk"
    YARD = "yard", "Yard"
    OTHER = "other", "Other"


class ZoneShape(models.TextChoices):
    RECTANGLE = "rectangle", "Rectangle"
    POLYGON = "polygon", "Polygon"


DEFAULT_DEDUP_TEMPLATE = "{camera_id}:{rule_id}"
DEDUP_PLACEHOLDERS = ("camera_id", "rule_id", "object_type", "zone_id", "severity")
