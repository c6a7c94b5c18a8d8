from django.urls import path

from dashboard.views import placeholder

app_name = "jobs"

urlpatterns = [
    path("jobs/", placeholder, {"title": "Jobs", "issue": "Tracked jobs (issue 3)"}, name="list"),
    path("exports/", placeholder, {"title": "Exports", "issue": "Exports (issue 3)"}, name="exports"),
    path("backups/", placeholder, {"title": "Backups", "issue": "Backup and restore (issue 3)"}, name="backups"),
]
