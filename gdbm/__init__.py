"""gdbm: machine-learned backmapping of coarse-grained molecular structures."""

__version__ = "0.1.0"
