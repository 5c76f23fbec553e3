from django.urls import path

from apps.recordings import views

urlpatterns = [
    path("", views.recording_list, name="recording-list"),
    path("<uuid:recording_id>/", views.playback, name="recording-playback"),
    path("<uuid:recording_id>/video", views.video, name="recording-video"),
    path("<uuid:recording_id>/downloads", views.download_create, name="recording-download-create"),
    path("<uuid:recording_id>/hold", views.legal_hold, name="recording-legal-hold"),
    path("downloads/<uuid:download_id>", views.download_status, name="recording-download"),
    path(
        "downloads/<uuid:download_id>/decision",
        views.download_decide,
        name="recording-download-decide",
    ),
    path("downloads/<uuid:download_id>/file", views.download_file, name="recording-download-file"),
]
