from django.urls import path

from alerting import views

app_name = "alerting"

urlpatterns = [
    # Alerts inbox
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/counts/", views.alert_counts, name="alert_counts"),
    path("alerts/bulk/", views.alerts_bulk, name="alerts_bulk"),
    path("alerts/<uuid:pk>/", views.alert_detail, name="alert_detail"),
    path("alerts/<uuid:pk>/<slug:action>/", views.alert_action, name="alert_action"),
    # Rules
    path("rules/", views.rules, name="rules"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/validate/", views.rule_validate, name="rule_validate"),
    path("rules/zone-options/", views.rule_zone_options, name="rule_zone_options"),
    path("rules/<uuid:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/<uuid:pk>/validate/", views.rule_validate, name="rule_validate_existing"),
    path("rules/<uuid:pk>/toggle/", views.rule_toggle, name="rule_toggle"),
    path("rules/<uuid:pk>/duplicate/", views.rule_duplicate, name="rule_duplicate"),
    path("rules/<uuid:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("rules/<uuid:pk>/test/", views.rule_test, name="rule_test"),
    path("rules/<uuid:pk>/channels/<int:index>/test/", views.channel_test, name="channel_test"),
    # Zones (camera ids are slugs, so the "_" routes cannot clash with one)
    path("zones/", views.zones, name="zones"),
    path("zones/<str:camera_id>/", views.camera_zones, name="camera_zones"),
    path("zones/<str:camera_id>/_frame/", views.camera_frame, name="camera_frame"),
    path("zones/<str:camera_id>/_new/", views.zone_create, name="zone_create"),
    path("zones/<str:camera_id>/z/<str:zone_id>/", views.zone_update, name="zone_update"),
    path("zones/<str:camera_id>/z/<str:zone_id>/delete/", views.zone_delete, name="zone_delete"),
    # Baselines
    path("baselines/", views.baselines, name="baselines"),
    path("baselines/_rebuild/", views.baselines_rebuild, name="baselines_rebuild"),
    path("baselines/<str:camera_id>/", views.camera_baselines, name="camera_baselines"),
]
