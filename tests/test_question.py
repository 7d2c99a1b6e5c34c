"""Reading questions: cleaning, language, names and what kind of fact is asked for."""
from bot.question import analyse, clean, detect_lang, mentioned
from index.keyword import tokenize


def test_clean_drops_control_characters_and_truncates_at_a_word():
    assert clean("  why\x00 not\u200b\tBaidu\x1b[31m? ", 100) == ("why not Baidu?", False)
    text, cut = clean("word " * 50, 42)
    assert cut and len(text) <= 42 and text.endswith("word")
    assert clean("\ud800x", 10)[0] == "?x"


def test_language_guess():
    assert detect_lang("Pourquoi pas Baidu ?") == "fr"
    assert detect_lang("Quels modèles d'IA Alibaba apporte-t-il à Apple ?") == "fr"
    assert detect_lang("why not Baidu?") == "en"
    assert detect_lang("What did the Beijing-based analyst say?") == "en"


def test_names_numbers_and_intents():
    q = analyse("What is Tim Cook's view on the iPhone 16 in 2023?", 500)
    assert q.names == ["Tim Cook", "iPhone"] and q.numbers == ["16", "2023"]
    assert analyse("What did the Beijing-based analyst say?", 500).names == ["Beijing"]
    assert analyse("By how much did Aidge raise sales?", 500).names == ["Aidge"]
    assert analyse("Quels modèles d'IA Alibaba apporte-t-il ?", 500).names == ["IA Alibaba"]
    assert analyse("How much is Apple paying Alibaba?", 500).wants_money
    assert analyse("What was Alibaba's revenue?", 500).wants_money
    assert analyse("How many developers use it?", 500).wants_number
    assert analyse("Quand les fonctions seront-elles lancées ?", 500).wants_time
    assert not analyse("Why not Baidu?", 500).wants_money


def test_names_match_french_forms_and_cognates():
    vocab = {"pekin", "chine", "ia", "cyberespace", "alibaba", "compatibilite"}
    prefixes = {w[:5] for w in vocab if len(w) >= 5}
    assert mentioned("Beijing", vocab, prefixes)
    assert mentioned("China", vocab, prefixes)
    assert mentioned("AI", vocab, prefixes)
    assert mentioned("Cyberspace", vocab, prefixes)
    assert not mentioned("Tim Cook", vocab, prefixes)
    assert not mentioned("Samsung", vocab, prefixes)


def test_keyword_tokens_meet_across_languages():
    assert set(tokenize("compatibility developers")) == set(tokenize("compatibilité développeurs"))
    assert tokenize("l’IA de Qwen2.5-Max et 20 000") == ["ia", "qwen2", "5", "max", "20", "000"]
