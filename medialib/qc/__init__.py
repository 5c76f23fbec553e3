"""Automatic quality inspection (质检) of one recording: the media analysis, Django-free.

`analysis.analyze(QcInput) -> QcAnalysis` reads the call's raw per-participant segments (the
same `SegmentInput`s the composer reads) and the composed MP4, and returns findings placed on
the call's timeline (seconds from `QcInput.start`, second 0 of the composed file) plus
metrics. `apps.qc` turns them into a stored report with a verdict (the policy lives there).

Why the raw segments for the picture and sound checks, and the composed file only for its own
length and A/V sync: a raw segment knows whose camera it is (the customer's face is looked
for in the customer's camera, not in a tile that a layout change or a screen share can move
or shrink), has the sender's full resolution and no burned-in text, and costs one VP8 decode
per frame (~0.6 ms) against an H.264 decode of the whole 1280x720 mix; gaps and coverage are
exact from the segments' wall-clock ranges. The composed file is what is kept as evidence, so
its length against the call's and its audio against its video are checked on the file itself.

The steps, one module each (``code``; category):

- `coverage` (complete): ``missing_track`` (a present participant's camera or microphone
  recorded nothing), ``gap`` (a participant's media missing for more than `gap_seconds`,
  leading and trailing included; *accounted* when an interval handed in as `accounted` (a
  hold, a reported media loss) covers most of it), ``duration_mismatch`` (composed file vs
  the call), ``av_sync`` (the composed file's audio and video start or length apart by more
  than `av_sync_seconds`);
- `picture` (media, vision): ``black``, ``frozen`` (sampled frames identical for
  `frozen_seconds`), ``low_bitrate``, ``low_resolution``; on customer cameras ``no_face``,
  ``multiple_faces``, ``occluded``, ``too_dark``, ``too_bright`` intervals and
  ``face_share_low`` (share of the customer's video time with a face under `min_face_share`);
- `sound` (media): ``silence`` (nobody audible for `silence_seconds`; one participant for
  `participant_silence_seconds`).

`files` reads whole files (an uploaded supplementary recording, the composed file's packet
timestamps); `intervals` is the interval arithmetic the steps share.

Video is decoded in full (VP8 frames depend on each other) but analysed at `sample_fps`
frames per second (4: interval edges land within 0.25 s); audio in 0.1 s bins.
"""
