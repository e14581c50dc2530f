"""The language-model role: a chat message type and a small abstract base class.

A backend implements one method, :meth:`LLM.stream`; :meth:`LLM.complete` is built
on it. Backends never load a model or open a connection in ``__init__``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["LLM", "Message", "ROLES"]

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat message.

    Raises:
        ValueError: ``role`` is not one of :data:`ROLES`, or ``content`` is not a string.
    """

    role: str
    content: str

    def __post_init__(self) -> None:
        # Caught here rather than as an HTTP 400 from a server, whose message
        # would not say which message was wrong.
        if self.role not in ROLES:
            raise ValueError(f"message role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise ValueError(f"message content must be a string, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        """The message in the OpenAI chat format (``{"role": ..., "content": ...}``)."""
        return {"role": self.role, "content": self.content}


class LLM(ABC):
    """A chat language model.

    Attributes:
        name: identifies the backend and model, e.g.
            ``"openai:http://127.0.0.1:8080/v1#qwen"``; shown in answers and timings.
    """

    name: str

    @abstractmethod
    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Generate a reply, yielding text pieces as they arrive.

        Arguments are checked when this is called; the model is reached when the
        iterator is first advanced.

        Args:
            messages: the conversation, oldest first.
            max_tokens: the most tokens to generate.
            temperature: sampling temperature; 0 is (near) deterministic.

        Returns:
            An iterator of non-empty text pieces whose concatenation is the reply.

        Raises:
            ValueError: bad ``messages``, ``max_tokens`` or ``temperature``.
            LLMTimeoutError: the model did not answer in time (while iterating).
            LLMError: the model could not be reached or loaded, or answered with an
                error or with output that cannot be read (while iterating).
        """

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        """Generate a reply and return it whole. Same arguments and errors as :meth:`stream`."""
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature))

    def warm_up(self) -> None:
        """Load whatever the backend loads lazily, so the first answer is not slow.

        The default does nothing; backends with a local model override it.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def check_request(messages: Sequence[Message], max_tokens: int, temperature: float) -> list[dict[str, str]]:
    """Validate the arguments of :meth:`LLM.stream` and return the messages as dicts.

    Raises:
        ValueError: naming the bad value.
    """
    if isinstance(messages, (str, Message)) or not messages:
        raise ValueError("messages must be a non-empty sequence of Message")
    for m in messages:
        if not isinstance(m, Message):
            raise ValueError(f"messages must be Message objects, got {type(m).__name__}")
    # bool is an int; max_tokens=True is a bug in the caller, not a request for 1 token.
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    return [m.to_dict() for m in messages]
