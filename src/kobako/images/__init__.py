"""Images: the store of names (store.py), unpacking into snapshots (unpack.py), the service the engine uses
(service.py), and import/load/save of archives (importer.py, archive.py, loader.py, saver.py)."""
