from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list, name="list"),
    path("jobs/<uuid:pk>/", views.job_detail, name="detail"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="cancel"),
    path("jobs/<uuid:pk>/retry/", views.job_retry, name="retry"),
    path("exports/", views.export_list, name="exports"),
    path("exports/new/", views.export_create, name="export_create"),
    path("exports/<uuid:pk>/", views.export_detail, name="export_detail"),
    path("exports/<uuid:pk>/download/", views.export_download, name="export_download"),
    path("exports/<uuid:pk>/legal-hold/", views.export_legal_hold, name="export_legal_hold"),
    path("backups/", views.backups, name="backups"),
    path("backups/create/", views.backup_create, name="backup_create"),
    path("backups/<uuid:pk>/", views.backup_detail, name="backup_detail"),
    path("backups/<uuid:pk>/download/", views.backup_download, name="backup_download"),
    path("backups/<uuid:pk>/delete/", views.backup_delete, name="backup_delete"),
    path("backups/restore/", views.restore_upload, name="restore_upload"),
    path("backups/restores/<uuid:pk>/", views.restore_detail, name="restore_detail"),
]
