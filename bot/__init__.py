"""The question side of storybot: the answering core, its renderers and the chat adapters."""
