"""The story side of storybot: read, clean, chunk, embed, store and search stories.

Nothing here knows about chat platforms, and nothing here imports ``bot``.
"""
