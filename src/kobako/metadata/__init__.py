"""Image metadata: the SQLite database (images table), the GC lock and garbage collection."""
