"""Reading story files: front matter, titles, decoding problems, offsets."""
from index.sources import read_stories

from tests.conftest import STORIES


def test_shipped_story_reads_with_title_from_first_line():
    stories, problems = read_stories(STORIES)
    assert problems == []
    assert len(stories) == 1
    s = stories[0]
    assert s.id == "apple-alibaba-ia-iphone-chine.fr"
    assert s.title == "Apple s’associe à Alibaba pour développer l’IA sur iPhone en Chine"
    assert s.body_start == 0


def test_front_matter_is_parsed_and_offsets_refer_to_the_whole_file(tmp_path):
    text = ("---\ntitle: A Title\noutlet: Le Monde\ndate: 2025-02-14\nurl: https://example.org/a\nlang: fr\n---\n"
            "First paragraph here.\n")
    (tmp_path / "a.md").write_text(text, encoding="utf-8")
    [s], problems = read_stories(tmp_path)
    assert problems == []
    assert (s.title, s.outlet, s.date, s.url, s.lang) == ("A Title", "Le Monde", "2025-02-14", "https://example.org/a", "fr")
    assert s.text[s.body_start:].startswith("First paragraph")


def test_bad_files_are_reported_by_name_and_the_rest_indexed(tmp_path):
    (tmp_path / "good.txt").write_text("Title\n\nA paragraph that is fine.\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me\n\nTexte.".encode("latin-1"))
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "open.md").write_text("---\ntitle: never closed\nSome text\n", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")  # not a story format: ignored silently
    stories, problems = read_stories(tmp_path)
    assert [s.id for s in stories] == ["good"]
    reasons = {p.path.name: p.message for p in problems}
    assert set(reasons) == {"latin1.txt", "empty.md", "binary.txt", "open.md"}
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.txt"]
    assert "never closed" in reasons["open.md"]
    assert str(problems[0]).startswith(problems[0].path.name)


def test_byte_order_mark_is_dropped_and_missing_folder_reported(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffTitre\n\nTexte.".encode("utf-8"))
    [s], _ = read_stories(tmp_path)
    assert s.title == "Titre" and s.text.startswith("Titre")
    stories, problems = read_stories(tmp_path / "nope")
    assert stories == [] and "does not exist" in problems[0].message
