"""radimt's version, in a module of its own so any module can import it at the top."""

__version__ = "0.1.0"
