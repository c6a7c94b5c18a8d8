from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from monitoring import signals  # noqa: F401  (connects the audit receivers)
