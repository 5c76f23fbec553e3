"""Every write of apps.recordings, one module per concept (docs/architecture/recordings-banking.md).

capture (the media job's segments), composition (the compose job), keypoints (打点), playback
(views audited), downloads (watermarked copies), retention (rules, legal hold, purge).
"""
