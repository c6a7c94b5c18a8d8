from django.db import models


class CameraStatus(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    ERROR = "error", "Error"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class FeedbackType(models.TextChoices):
    ACCURATE = "accurate", "Accurate"
    CORRECT = "correct", "Correct"
    FALSE_POSITIVE = "false_positive", "False positive"
    MISSED_THREAT = "missed_threat", "Missed threat"
    SEVERITY_WRONG = "severity_wrong", "Severity wrong"


# Detection classes the upstream object detector emits; the rule form offers these.
OBJECT_TYPES = ["person", "car", "truck", "bicycle", "motorcycle", "bus", "dog", "cat", "bird", "package"]

THREAT_TYPES = ["gun", "knife", "grenade", "explosive", "weapon"]
POSE_CLASSES = ["standing", "crouching", "bending_over", "sitting", "lying", "running", "climbing"]
ACTIONS = ["walking", "running", "standing", "loitering", "fighting", "climbing", "carrying"]
AGE_RANGES = ["0-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61+"]
GENDERS = ["male", "female", "unknown"]

REID_DIMENSIONS = 512


def risk_level_for(score: int | None) -> str | None:
    """Upstream's banding of the 0-100 risk score."""
    if score is None:
        return None
    if score >= 85:
        return RiskLevel.CRITICAL
    if score >= 60:
        return RiskLevel.HIGH
    if score >= 30:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW
