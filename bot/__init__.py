"""The question side of storybot: the answering core, its renderers and the chat adapters."""

__version__ = "0.1.0"  # the one place the version lives: pyproject.toml reads it from here
