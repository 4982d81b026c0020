"""Text in collections, beyond the vectors: which embedding models this daemon can run.

Any signed-in caller may list them (an API key needs `read`): the list names models and sizes, nothing of
anyone's data.
"""

from __future__ import annotations

from daemon.services.principal import Principal
from daemon.stores.embedders import Embedders
from shared.errors import ApiError, Code
from shared.models.text import Embedder, EmbedderList


class TextService:
    def __init__(self, embedders: Embedders) -> None:
        self.embedders = embedders

    def list_embedders(self, principal: Principal) -> EmbedderList:
        if not principal.can("read"):
            raise ApiError(Code.FORBIDDEN, "this credential lacks the 'read' scope")
        return EmbedderList(
            items=[Embedder(name=e.name, dimension=e.dimension, available=e.available) for e in self.embedders.list()]
        )
