"""Django-free media code: what the platform does with recorded media, given plain data.

Modules (docs/architecture/media.md has the map): `segments` (raw segments: write, demux,
decode, probe), `fonts` and `overlay` (burned-in text, the composed picture), `layout`
(where each party is), `composition` (segments -> the 双录 MP4), `verification` (a composed
file checked before it is kept), `watermark` (a marked download copy), `vision` (what a
camera frame shows) and `qc` (automatic quality inspection). Nothing here imports Django,
the apps, the call runtime (`media_worker`) or aiortc: an import-linter contract says so.
"""
