"""Django-free media code: segments, overlay, layout, composition, verification, QC analysis."""
