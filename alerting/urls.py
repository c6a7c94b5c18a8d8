from django.urls import path

from dashboard.views import placeholder

app_name = "alerting"

urlpatterns = [
    path("alerts/", placeholder, {"title": "Alerts", "issue": "Alerts inbox (issue 5)"}, name="alerts"),
    path("rules/", placeholder, {"title": "Alert rules", "issue": "Rules and rule engine (issue 5)"}, name="rules"),
    path("zones/", placeholder, {"title": "Camera zones", "issue": "Zone editor (issue 5)"}, name="zones"),
    path("baselines/", placeholder, {"title": "Baselines", "issue": "Baselines (issue 5)"}, name="baselines"),
]
