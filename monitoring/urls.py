from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("gpu/", views.gpu, name="gpu"),
    path("gpu/history.csv", views.gpu_csv, name="gpu_csv"),
    path("logs/", views.logs, name="logs"),
    path("logs/<int:pk>/", views.log_detail, name="log_detail"),
    path("api/logs/", views.ingest_logs, name="ingest"),
    path("audit/", views.audit, name="audit"),
    path("audit/summary/", views.audit_summary, name="audit_summary"),
    path("audit/<int:pk>/", views.audit_detail, name="audit_detail"),
]
