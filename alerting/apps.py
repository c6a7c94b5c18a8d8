from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    default_auto_field = "django.db.models.AutoField"
