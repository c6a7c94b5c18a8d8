from django.urls import path

from dashboard.views import placeholder

app_name = "monitoring"

urlpatterns = [
    path("gpu/", placeholder, {"title": "GPU", "issue": "GPU sampling and GPU page (issue 4)"}, name="gpu"),
    path("logs/", placeholder, {"title": "Logs", "issue": "Log explorer (issue 4)"}, name="logs"),
    path("audit/", placeholder, {"title": "Audit trail", "issue": "Audit explorer (issue 4)"}, name="audit"),
]
