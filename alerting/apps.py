from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from alerting import signals  # noqa: F401  (connects the event → rule engine trigger)
