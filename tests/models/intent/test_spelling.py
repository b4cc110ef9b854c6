from __future__ import annotations

import os
import pickle
import string
import subprocess
import sys

import pytest

from tailorbot.models.intent.spelling import TypoCorrector


def test_typo_corrector() -> None:
    corrector = TypoCorrector().fit(["how do I change my pin", "what is my card number"])
    assert corrector.correct("chnage my pinn numbr") == "change my pin number"
    assert corrector.correct("teh pni") == "teh pni"  # under 4 letters: left alone
    assert corrector.correct("zzzzzz") == "zzzzzz"  # nothing within 1 edit
    assert corrector.expand("my card") == "my card"  # nothing unknown: unchanged
    assert corrector.correct("a" * 5000) == "a" * 5000  # far too long for a word: left alone
    assert corrector.expand("crad numbr") == "crad numbr card number"
    assert pickle.loads(pickle.dumps(corrector)).correct("chnage") == "change"
    with pytest.raises(ValueError, match="max_distance"):
        TypoCorrector(max_distance=3)


def test_the_python_path_expands_as_the_compiled_one() -> None:
    corrector = TypoCorrector().fit(["how do I change my pin", "what is my card number"])
    texts = ["crad numbr", "Chnage MY pinn!", "crad_numbr 12 chnagé", "ñññññ carrd", "", "card"]
    compiled = [corrector.expand(text) for text in texts]
    corrector._unknown_words = False  # as where the extension is missing
    assert [corrector.expand(text) for text in texts] == compiled
    assert compiled[0] == "crad numbr card number"
    restored = pickle.loads(pickle.dumps(corrector))  # the lookup is not pickled
    assert "_unknown_words" not in restored.__dict__
    assert [restored.expand(text) for text in texts] == compiled


# "xord" is one substitution away from each of the 25 equally frequent words "aord" ..
# "zord": a tie that set order used to break, differently under each PYTHONHASHSEED.
_TIED = [f"{letter}ord" for letter in string.ascii_lowercase if letter != "x"]


def test_a_tie_goes_to_the_more_frequent_word_then_the_alphabetically_first() -> None:
    assert TypoCorrector().fit(_TIED).correct_word("xord") == "aord"
    assert TypoCorrector().fit([*_TIED, "mord"]).correct_word("xord") == "mord"


_SCRIPT = """
import string
from tailorbot.models.intent.spelling import TypoCorrector
tied = [f"{letter}ord" for letter in string.ascii_lowercase if letter != "x"]
print(TypoCorrector().fit(tied).correct("xord"))
"""


def test_the_same_correction_under_every_hash_seed() -> None:
    outputs = {
        subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert outputs == {"aord\n"}


def test_two_substitutions_are_found_at_distance_two() -> None:
    # no one-deletion form is shared: the index must hold two-deletion forms
    corrector = TypoCorrector(max_distance=2).fit(["the aord is here", "another word"])
    assert corrector.correct_word("xqrd") == "aord"
    assert TypoCorrector(max_distance=1).fit(["aord"]).correct_word("xqrd") == "xqrd"
    assert corrector.correct_word("anotehr") == "another"  # a swap counts one edit
