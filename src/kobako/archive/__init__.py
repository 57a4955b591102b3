"""Layer tar streams: safe apply with whiteouts (tar.py) and layer creation from a directory diff (diff.py)."""
