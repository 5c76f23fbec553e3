"""Whether a whole WebM/Matroska or MP4 file is intact: every byte belongs to an element (box)
that ends inside the file.

FFmpeg's demuxers stop quietly where a file was cut off or where garbage begins, handing back
the packets before it, so a truncated or damaged upload would pass for a short recording. A
walk of the container's own structure catches both: an element whose size runs past the end
of the file (cut off), or an ID that cannot be where it is (garbage).
"""

from __future__ import annotations

from typing import Any

from medialib.segments import Opener

__all__ = ["check_intact"]

_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
# Matroska level-1 elements (children of Segment), and EBML's Void and CRC-32 anywhere.
_SEGMENT_CHILDREN = {
    0x114D9B74,  # SeekHead
    0x1549A966,  # Info
    0x1654AE6B,  # Tracks
    _CLUSTER,
    0x1C53BB6B,  # Cues
    0x1941A469,  # Attachments
    0x1043A770,  # Chapters
    0x1254C367,  # Tags
}
_GLOBAL = {0xEC, 0xBF}  # Void, CRC-32
_CLUSTER_CHILDREN = {
    0xE7,  # Timestamp
    0x5854,  # SilentTracks
    0xA7,  # Position
    0xAB,  # PrevSize
    0xA3,  # SimpleBlock
    0xA0,  # BlockGroup
    0xAF,  # EncryptedBlock
}
_UNKNOWN = -1


def check_intact(opener: Opener) -> None:
    """ValueError (with where and why) unless the file is structurally whole. Files that are
    neither Matroska nor MP4 are left to the demuxer."""
    source: Any = opener()
    try:
        head = source.read(12)
        size = source.seek(0, 2)
        source.seek(0)
        if head[:4] == _EBML_HEADER.to_bytes(4, "big"):
            _Ebml(source, size).walk()
        elif head[4:8] == b"ftyp":
            _walk_mp4(source, size)
    finally:
        source.close()


class _Ebml:
    """RFC 8794 (EBML) element walk over Matroska's top levels and clusters."""

    def __init__(self, source: Any, size: int) -> None:
        self.source = source
        self.size = size
        self.pos = 0

    def _vint(self, *, is_id: bool) -> int:
        first = self.source.read(1)
        if not first:
            raise ValueError(f"cut off at byte {self.pos}")
        length = 9 - first[0].bit_length()  # the leading zero bits + 1 (RFC 8794 section 4)
        if first[0] == 0 or length > (4 if is_id else 8):
            raise ValueError(f"not an element at byte {self.pos}")
        rest = self.source.read(length - 1)
        if len(rest) != length - 1:
            raise ValueError(f"cut off at byte {self.pos}")
        raw = int.from_bytes(first + rest, "big")
        self.pos += length
        if is_id:
            return raw
        value = raw & ((1 << (7 * length)) - 1)
        return _UNKNOWN if value == (1 << (7 * length)) - 1 else value

    def _header(self) -> tuple[int, int, int]:
        """(ID, data size or _UNKNOWN, where the element starts)."""
        start = self.pos
        return self._vint(is_id=True), self._vint(is_id=False), start

    def _skip(self, element: int, length: int, start: int) -> None:
        if self.pos + length > self.size:
            raise ValueError(
                f"cut off: element {element:X} at byte {start} needs {length} bytes, "
                f"{self.size - self.pos} left"
            )
        self.pos += length
        self.source.seek(self.pos)

    def walk(self) -> None:
        segments = 0
        while self.pos < self.size:
            element, length, start = self._header()
            if element == _SEGMENT:
                segments += 1
                self._segment(length)
            elif element == _EBML_HEADER and length != _UNKNOWN:
                self._skip(element, length, start)
            else:
                raise ValueError(f"unexpected element {element:X} at byte {start}")
        if not segments:
            raise ValueError("no Matroska segment")

    def _segment(self, length: int) -> None:
        end = self.size if length == _UNKNOWN else self.pos + length
        if end > self.size:
            raise ValueError(f"cut off: the segment needs {end - self.size} more bytes")
        pending: tuple[int, int, int] | None = None
        while self.pos < end:
            element, size, start = pending or self._header()
            pending = None
            if element == _CLUSTER and size == _UNKNOWN:
                pending = self._open_cluster(end)  # ends where the next level-1 element starts
            elif element in _SEGMENT_CHILDREN or element in _GLOBAL:
                if size == _UNKNOWN:
                    raise ValueError(f"element {element:X} at byte {start} has no size")
                self._skip(element, size, start)
            else:
                raise ValueError(f"unexpected element {element:X} at byte {start}")

    def _open_cluster(self, end: int) -> tuple[int, int, int] | None:
        while self.pos < end:
            element, size, start = self._header()
            if element in _SEGMENT_CHILDREN:
                return element, size, start
            if element not in _CLUSTER_CHILDREN and element not in _GLOBAL:
                raise ValueError(f"unexpected element {element:X} in a cluster at byte {start}")
            if size == _UNKNOWN:
                raise ValueError(f"element {element:X} at byte {start} has no size")
            self._skip(element, size, start)
        return None


def _walk_mp4(source: Any, size: int) -> None:
    """ISO/IEC 14496-12 section 4.2: top-level boxes, each (size, type[, largesize])."""
    pos = 0
    while pos < size:
        header = source.read(8)
        if len(header) < 8:
            raise ValueError(f"cut off at byte {pos}")
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(0x20 <= c < 0x7F for c in kind):
            raise ValueError(f"not a box at byte {pos}")
        if length == 1:
            large = source.read(8)
            if len(large) < 8:
                raise ValueError(f"cut off at byte {pos}")
            length = int.from_bytes(large, "big")
        elif length == 0:  # the last box, to the end of the file
            return
        if length < 8 or pos + length > size:
            raise ValueError(f"cut off: box {kind.decode()} at byte {pos} needs {length} bytes")
        pos += length
        source.seek(pos)
