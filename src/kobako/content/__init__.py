"""Content-addressed blob storage: narrow Provider/Ingester/Manager faces and a local implementation."""

from kobako.content.base import Info, Ingester, Manager, Problem, Provider, Status, Store, Writer, write_blob

__all__ = ["Info", "Ingester", "Manager", "Problem", "Provider", "Status", "Store", "Writer", "write_blob"]
