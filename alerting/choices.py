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


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ChannelType(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


# 0=Monday … 6=Sunday, as Python's date.weekday() and the baselines' day_of_week.
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]

# Statuses from which an operator may acknowledge / dismiss an alert.
ACKNOWLEDGEABLE = (AlertStatus.PENDING, AlertStatus.DELIVERED)
DISMISSABLE = (AlertStatus.PENDING, AlertStatus.DELIVERED, AlertStatus.ACKNOWLEDGED)
