"""``python -m isobuild``."""
from .cli import run

run()
