"""isobuild: a PEP 517 build frontend for packaging pipelines.

The hooks run in one subprocess of the real target interpreter whose sys.path
holds the standard library and the pipeline's build environment only.
"""

__version__ = "0.1.0.dev0"
