"""What a config can name: layers (torch.nn's, the chapter's, yours) and initializers, by name
or dotted path, and which dotted paths a file someone else wrote may import. Plain torch."""

from runner.registry.initializers import register_initializer
from runner.registry.layers import register_layer

__all__ = ["register_initializer", "register_layer"]
