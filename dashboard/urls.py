from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views

# Routes of the dashboard app itself (core domain: events, detections).
app_patterns = (
    [
        path("events/", views.events_placeholder, name="events"),
    ],
    "dashboard",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include(app_patterns)),
    path("", include("monitoring.urls")),
    path("", include("alerting.urls")),
    path("", include("jobs.urls")),
]
