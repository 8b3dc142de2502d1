"""One session's prepared uploads, so a rerun of a page does not decode its files again."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from vae.images import ImageInputError, PreparedImage, prepare_upload

PREPARED_PER_SESSION = 16  # a prepared file with its step pictures is about 1 MB


class PreparedUploads:
    """Prepared files keyed by their content (SHA-256), the model's input shape and the recipe (so the same
    picture under two names is prepared once); the least recently used beyond `size` are dropped.

    Keep one per session (Streamlit's `st.session_state`); not shared between threads.
    """

    def __init__(self, size: int = PREPARED_PER_SESSION):
        self.size = size
        self._items: OrderedDict[tuple, PreparedImage | str] = OrderedDict()

    def prepare(self, data: bytes, image_shape: tuple[int, int, int], name: str = "image",
                recipe: str | None = None) -> PreparedImage:
        """As `vae.images.prepare_upload`; a file seen before comes from memory, its error included."""
        key = (hashlib.sha256(data).hexdigest(), tuple(image_shape), recipe)
        if key not in self._items:
            try:
                self._items[key] = prepare_upload(data, image_shape, name, recipe)
            except ImageInputError as error:
                self._items[key] = error.reason
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        found = self._items[key]
        if isinstance(found, str):
            raise ImageInputError(f"{name}: {found}")
        return found
