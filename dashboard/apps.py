from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from dashboard.roles import sync_roles_after_migrate

        # Every migrate (make run, each test database) leaves Operators and Viewers with
        # exactly their declared admin permissions.
        post_migrate.connect(sync_roles_after_migrate, sender=self, dispatch_uid="dashboard.roles")
