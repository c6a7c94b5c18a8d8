from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views

# Routes of the dashboard app itself (core domain: events, detections).
app_patterns = (
    [
        path("events/", views.events, name="events"),
        path("events/review/", views.events_bulk_review, name="events_bulk_review"),
        path("events/<int:pk>/", views.event_detail, name="event_detail"),
        path("events/<int:pk>/review/", views.event_review, name="event_review"),
        path("events/<int:pk>/feedback/", views.event_feedback, name="event_feedback"),
        path("detections/<int:pk>/frame/", views.detection_frame, name="detection_frame"),
        path("detections/<int:pk>/similar/", views.detection_similar, name="detection_similar"),
        # /audit/ is the audit-trail explorer (monitoring); these are the LLM's event audits.
        path("feedback/stats/", views.feedback_stats, name="feedback_stats"),
        path("audits/events/", views.audits, name="audits"),
        path("overview/<slug:widget>/", views.overview_widget, name="overview_widget"),
    ],
    "dashboard",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include(app_patterns)),
    path("", include("monitoring.urls")),
    path("", include("alerting.urls")),
    path("", include("jobs.urls")),
]
