"""The instruction tokenizer that ships with embodia: a fixed word-level vocabulary for UrbanNav's grammar.

UrbanNav instructions (``embodia.envs.nav.tasks``) are built from a small grammar: turn and count words, the
landmark colours and shapes of ``embodia.envs.nav.city``, and a handful of connecting words. The vocabulary is
frozen here, in this order, so token ids in a checkpoint keep their meaning; new words are only ever appended.
Text is lower-cased and split into words and the punctuation marks ``, . ; : ' - ! ?``; numbers are spelt digit by
digit (``"12"`` -> ``"1" "2"``), so any count is representable; any other word becomes ``<unk>``.

Example::

    >>> tok = InstructionTokenizer(max_tokens=8)
    >>> tok.encode("Turn left at the red tower.")
    array([14, 15, 18, 19, 54, 58,  3,  0])
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from embodia.envs.nav.city import LANDMARK_CLASSES, LANDMARK_COLOURS, LANDMARK_SHAPES
from embodia.envs.nav.tasks import NUMBER_WORDS

PAD, UNK = "<pad>", "<unk>"
_PUNCTUATION = (",", ".", ";", ":", "'", "-", "!", "?")
_GRAMMAR_WORDS = (
    "go", "straight", "through", "then", "turn", "left", "right", "around", "at", "the", "next",
    "intersection", "intersections", "and", "stop", "to", "on", "your", "now", "back", "you", "passed", "there",
)  # fmt: skip
_DIGITS = tuple("0123456789")
VOCABULARY: tuple[str, ...] = (
    PAD, UNK, *_PUNCTUATION, *_GRAMMAR_WORDS, *NUMBER_WORDS, *_DIGITS, *LANDMARK_COLOURS, *LANDMARK_SHAPES,
)  # fmt: skip
"""Token strings by id: id 0 is padding, id 1 unknown."""
_WORD_RE = re.compile(r"[a-z]+|[0-9]|[,.;:'\-!?]")


class InstructionTokenizer:
    """Maps an instruction to a fixed-length array of token ids (see the module docstring).

    Args:
        max_tokens: Length L of every encoded instruction; longer texts are cut (``encode`` says how many
            tokens it dropped through ``last_truncated``), shorter ones padded with id 0.
    """

    def __init__(self, max_tokens: int = 64) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self.vocabulary = VOCABULARY
        self._ids = {word: i for i, word in enumerate(VOCABULARY)}
        self.last_truncated = 0

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the embedding table's rows)."""
        return len(self.vocabulary)

    def words(self, text: str) -> list[str]:
        """The word and punctuation pieces of ``text``, lower-cased (numbers as single digits)."""
        if not isinstance(text, str):
            raise TypeError(f"an instruction must be a str, got {type(text).__name__}")
        return _WORD_RE.findall(text.lower())

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``.

        Returns:
            ``(L,)`` int64 ids, ``L = max_tokens``, padded with 0.
        """
        ids = [self._ids.get(word, 1) for word in self.words(text)]
        self.last_truncated = max(0, len(ids) - self.max_tokens)
        out = np.zeros(self.max_tokens, dtype=np.int64)
        out[: min(len(ids), self.max_tokens)] = ids[: self.max_tokens]
        return out

    def decode(self, ids: np.ndarray) -> str:
        """The words of ``ids`` joined by spaces (padding dropped); for inspection only."""
        return " ".join(self.vocabulary[int(i)] for i in np.asarray(ids).reshape(-1) if int(i) != 0)


def goal_landmark_class(text: str) -> int | None:
    """Semantic class id (``1 + LANDMARK_CLASSES.index(name)``) of the instruction's goal landmark.

    The goal is the last ``"<colour> <shape>"`` pair in the text: UrbanNav instructions end with it ("... stop at
    the blue kiosk on your right.", "Now go back to the red tower you passed, ..."). None if there is none.
    """
    words = _WORD_RE.findall(text.lower())
    found = None
    for first, second in itertools.pairwise(words):
        name = f"{first} {second}"
        if name in LANDMARK_CLASSES:
            found = LANDMARK_CLASSES.index(name) + 1
    return found


def require_goal_landmark(text: str) -> int:
    """:func:`goal_landmark_class` of an instruction that must name one (every UrbanNav instruction does).

    Raises:
        ValueError: The instruction names no known landmark (one line, listing the known colours and shapes).
    """
    goal = goal_landmark_class(text)
    if goal is None:
        raise ValueError(
            f"the instruction {text!r} names no known landmark (a colour of {', '.join(LANDMARK_COLOURS)} and a "
            f"shape of {', '.join(LANDMARK_SHAPES)})"
        )
    return goal
