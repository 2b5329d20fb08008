"""What runs inside the target interpreter: stdlib-only, valid on Python 3.8+.

The target is started as ``python -S -s .../_inside/__main__.py COMMAND``;
``__main__`` loads this package under a name no project uses, so none of its
modules can shadow a backend's own.
"""
