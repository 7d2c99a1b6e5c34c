"""Cleaning page furniture and chunking with exact offsets."""
from index.chunk import chunk_story, split_sentences
from index.clean import blocks, is_furniture
from index.sources import parse_story, read_stories

from tests.conftest import STORIES


def shipped():
    return read_stories(STORIES)[0][0]


def test_page_furniture_is_dropped_and_article_sentences_kept():
    for line in ("- Advertisement -", "Partager cet article", "9 Minutes de lecture",
                 "© Photo : Nikkimeel (Depositphotos)", "Publicité", "Lire aussi : autre chose"):
        assert is_furniture(line), line
    for line in ("Apple a décidé de s'associer à l'entreprise chinoise Alibaba.",
                 "The advertisement market grew by 12 % in 2024, the report said, and more."):
        assert not is_furniture(line), line
    story = shipped()
    kept = " ".join(b.text for b in blocks(story))
    assert "Advertisement" not in kept and "Partager" not in kept and "Minutes de lecture" not in kept
    assert "Depositphotos" not in kept
    assert "Les premières discussions avec Baidu ont échoué" in kept


def test_every_block_and_sentence_is_the_story_text_at_its_offsets():
    story = shipped()
    for b in blocks(story):
        assert story.text[b.start:b.end] == b.text
    for c in chunk_story(story):
        assert story.text[c.start:c.end].startswith(c.sentences[0].text)
        for s in c.sentences:
            assert story.text[s.start:s.end] == s.text


def test_headings_are_merged_into_the_following_paragraph():
    chunks = chunk_story(shipped())
    assert len(chunks) == 13
    baidu = next(c for c in chunks if "Les premières discussions avec Baidu" in c.text)
    assert baidu.section == "Pourquoi Apple s’est-elle tournée vers Alibaba après les déboires de Baidu ?"
    assert baidu.sentences[0].kind == "heading"
    assert baidu.text.startswith("Pourquoi Apple") and "\n\n" in baidu.text
    # no chunk is a heading on its own, and the title is not a chunk
    assert all(any(s.kind == "body" for s in c.sentences) for c in chunks)
    assert not any(c.text.startswith("Apple s’associe à Alibaba") for c in chunks)
    # the next paragraph of the same section keeps the section but not the heading text
    nxt = chunks[chunks.index(baidu) + 1]
    assert nxt.section == baidu.section and nxt.sentences[0].kind == "body"


def test_chunk_ids_are_stable_and_long_paragraphs_split_on_sentences():
    story = shipped()
    assert [c.id for c in chunk_story(story)] == [c.id for c in chunk_story(story)]
    long_para = " ".join(f"Phrase numéro {i} avec quelques mots de plus." for i in range(60))
    s = parse_story("long", STORIES, f"Titre\n\n{long_para}\n".encode())
    chunks = chunk_story(s, max_chars=400)
    assert len(chunks) > 3
    assert all(len(c.text) <= 400 for c in chunks)
    assert [c.id for c in chunks][:2] == ["long#1.1", "long#1.2"]
    assert all(c.text.endswith(".") for c in chunks)


def test_sentence_splitter_handles_quotes_and_abbreviations():
    text = ("« Leurs données donnent un raccourci. » Les entreprises ont soumis. M. Zhang a parlé. "
            "« Cet accord leur fait gagner du temps ».")
    got = [s.text for s in split_sentences(text)]
    assert got == ["« Leurs données donnent un raccourci. »", "Les entreprises ont soumis.",
                   "M. Zhang a parlé.", "« Cet accord leur fait gagner du temps »."]


def test_markdown_rules_and_underlines_are_not_text(tmp_path):
    # "---" between two parts of a story was a heading over the next paragraph (its section
    # shown as "---") and, alone, a sentence a reply could quote ("The closest it comes is “---”")
    text = ("---\ntitle: Fox in the library\n---\nA fox was seen in the Brennan library.\n\n---\n\n"
            "Update: the fox was released in the park.\n\n* * *\n\nThe next part\n=============\n\n"
            "Staff caught it with a blanket.\n")
    story = parse_story("fox", tmp_path / "fox.md", text.encode())
    chunks = chunk_story(story)
    sentences = [s.text for c in chunks for s in c.sentences]
    assert sentences == ["A fox was seen in the Brennan library.", "Update: the fox was released in the park.",
                         "The next part", "Staff caught it with a blanket."]
    assert [c.section for c in chunks] == [None, None, "The next part"]
    for line in ("---", "* * *", "=====", "___", "- - -"):
        assert is_furniture(line), line
    assert not is_furniture("-- Jane Doe")
