"""Reading story files: front matter, titles, decoding problems, offsets."""
import os
from pathlib import Path

from index.clean import blocks
from index.refresh import load_corpus
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


def test_names_that_are_not_utf8_are_skipped_and_shown_escaped(tmp_path):
    # Python reads such a name with lone surrogates: as a story id they failed the refresh
    (tmp_path / "good.txt").write_text("Title\n\nA paragraph that is fine.\n", encoding="utf-8")
    folder = os.fsencode(tmp_path)
    os.mkdir(folder + b"/d\xe9p\xeat")
    for name in (b"/caf\xe9.txt", b"/d\xe9p\xeat/fine.txt"):
        with open(folder + name, "wb") as fh:
            fh.write(b"Title\n\nA paragraph that is fine.\n")
    stories, problems = read_stories(tmp_path)
    assert [s.id for s in stories] == ["good"]
    shown = sorted(str(p) for p in problems)
    assert [line.split(":")[0] for line in shown] == ["caf\\xe9.txt", "fine.txt"]
    assert all("not UTF-8" in line for line in shown)
    "".join(shown).encode("utf-8")


def test_byte_order_mark_is_dropped_and_missing_folder_reported(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffTitre\n\nTexte.".encode("utf-8"))
    [s], _ = read_stories(tmp_path)
    assert s.title == "Titre" and s.text.startswith("Titre")
    stories, problems = read_stories(tmp_path / "nope")
    assert stories == [] and "does not exist" in problems[0].message



def test_front_matter_with_comments_blank_lines_above_it_and_nested_keys(tmp_path):
    # blank lines (after a byte order mark) above the opening "---" made the front matter
    # body text, its keys read as the title; a "title:" nested under another key, or a block
    # nested under "title:", was read as the story's title
    (tmp_path / "above.md").write_bytes("\ufeff\n  \n---\n# imported from the CMS\ntitle: Ferry cancelled\n"
                                        "  # a comment inside a key\noutlet: Harbour News\n---\nThe ferry stayed "
                                        "in port.\n".encode("utf-8"))
    (tmp_path / "nested.md").write_text("---\nauthor:\n  name: Jane Doe\n  title: Reporter\n  links:\n"
                                        "    url: https://example.org/jane\ndate: 2025-03-01\ntags:\n  - port\n"
                                        "---\nHarbour reopens\n\nThe harbour reopened on Monday.\n",
                                        encoding="utf-8")
    (tmp_path / "languages.md").write_text("---\ntitle:\n  en: Mill reopens\n  fr: Le moulin rouvre\n"
                                           "lang: en\n---\nMill reopens in May\n\nThe mill reopens in May.\n",
                                           encoding="utf-8")
    stories, problems = read_stories(tmp_path)
    assert problems == []
    got = {s.id: s for s in stories}
    above = got["above"]
    assert (above.title, above.outlet) == ("Ferry cancelled", "Harbour News")
    assert above.text[above.body_start:] == "The ferry stayed in port.\n"
    nested = got["nested"]
    assert (nested.title, nested.date, nested.url) == ("Harbour reopens", "2025-03-01", None)
    assert nested.extra == {"author": "", "tags": "port"}
    assert got["languages"].title == "Mill reopens in May" and got["languages"].lang == "en"
    # a title that is not the front matter's is the body's first line, never a passage
    for story in (nested, got["languages"]):
        first, *rest = blocks(story)
        assert (first.kind, first.text) == ("title", story.title) and rest[0].kind == "para"

# --- the folder is a boundary -------------------------------------------------------------------

def test_links_out_of_the_folder_are_skipped_and_reported_by_name(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.txt").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (outside / "more.md").write_text("Secret notes\n\nNot a story.\n", encoding="utf-8")
    folder = tmp_path / "stories"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.txt").write_text("Title\n\nA paragraph that is fine.\n", encoding="utf-8")
    (folder / "passwd.txt").symlink_to(outside / "passwd.txt")  # a file link out
    (folder / "sub" / "elsewhere").symlink_to(outside, target_is_directory=True)  # a folder link out
    (folder / "alias.txt").symlink_to(folder / "good.txt")  # a link within: read once, as good.txt
    (folder / "gone.md").symlink_to(tmp_path / "nothing.md")  # dangling
    (folder / "loop.txt").symlink_to(folder / "loop.txt")  # a loop
    stories, problems = read_stories(folder)
    assert [s.id for s in stories] == ["good"]
    assert all("root:" not in s.text and "Secret" not in s.text for s in stories)
    reasons = {p.path.name: p.message for p in problems}
    assert set(reasons) == {"passwd.txt", "elsewhere", "gone.md", "loop.txt", "alias.txt"}
    assert "outside the stories folder" in reasons["passwd.txt"]
    assert "outside the stories folder" in reasons["elsewhere"]
    assert "does not exist" in reasons["gone.md"]


def test_a_file_reached_through_links_is_one_story_under_its_own_name(tmp_path):
    # a link beside its target was indexed as a second story with the same text
    folder = tmp_path / "stories"
    (folder / "2025").mkdir(parents=True)
    (folder / "harbour.md").write_text("Harbour\n\nThe ferry was cancelled because of fog.\n", encoding="utf-8")
    (folder / "a-link.md").symlink_to(folder / "harbour.md")  # sorts before its target
    (folder / "2025" / "ferry.md").symlink_to(Path("..") / "harbour.md")  # relative, from a subfolder
    (folder / ".drafts").mkdir()
    (folder / ".drafts" / "mill.txt").write_text("Mill\n\nThe mill reopens in May.\n", encoding="utf-8")
    (folder / "mill.txt").symlink_to(folder / ".drafts" / "mill.txt")  # only links reach it: the first is read
    (folder / "mill-copy.txt").symlink_to(folder / ".drafts" / "mill.txt")
    stories, problems = read_stories(folder)
    assert [s.id for s in stories] == ["harbour", "mill-copy"]
    assert [str(p) for p in problems] == [
        "ferry.md: is a link to the same file as harbour.md, which is read; skipped",
        "a-link.md: is a link to the same file as harbour.md, which is read; skipped",
        "mill.txt: is a link to the same file as mill-copy.txt, which is read; skipped"]
    # ... and a refresh reports them as it reports every skipped file
    _, chunks, skipped = load_corpus(folder, max_chars=1200)
    assert sorted({c.story.id for c in chunks}) == ["harbour", "mill-copy"] and skipped == problems


def test_a_folder_given_through_a_link_is_still_its_own_boundary(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("Title\n\nText.\n", encoding="utf-8")
    (tmp_path / "via").symlink_to(real, target_is_directory=True)
    stories, problems = read_stories(tmp_path / "via")
    assert [s.id for s in stories] == ["a"] and problems == []


def test_files_over_the_size_limit_are_skipped_with_a_clear_line(tmp_path):
    (tmp_path / "small.txt").write_text("Title\n\nShort text.\n", encoding="utf-8")
    (tmp_path / "big.md").write_text("Title\n\n" + "word " * 3000, encoding="utf-8")
    stories, problems = read_stories(tmp_path, max_bytes=10_000)
    assert [s.id for s in stories] == ["small"]
    [p] = problems
    assert str(p).startswith("big.md: the file is 15 kB, larger than the 10 kB limit")
    assert "STORYBOT_MAX_STORY_BYTES" in p.message
    # the default limit is 1 MB
    (tmp_path / "big.md").write_bytes(b"Title\n\n" + b"x" * 1_000_001)
    _, problems = read_stories(tmp_path)
    assert "larger than the 1 MB limit" in problems[0].message


def test_front_matter_as_editors_write_it(tmp_path):
    # a closing quote inside a title was stripped, a YAML list under an unknown key made the
    # whole story unreadable, and an empty front matter was "never closed"
    (tmp_path / "quote.md").write_text('---\ntitle: Macron: "Nous ne céderons pas"\noutlet: \'L\'\'Est\'\n'
                                       'tags:\n  - politique\n  - "retraites"\nlang: fr\n---\nLe texte.\n',
                                       encoding="utf-8")
    (tmp_path / "folded.md").write_text('---\ntitle: >\n  Ferry cancelled\n  by fog\n---\nThe text.\n',
                                        encoding="utf-8")
    (tmp_path / "bare.md").write_text("---\n---\nBare title\n\nThe text.\n", encoding="utf-8")
    (tmp_path / "notepad.txt").write_bytes("Titre\n\nTexte.".encode("utf-16"))
    stories, problems = read_stories(tmp_path)
    got = {s.id: s for s in stories}
    assert got["quote"].title == 'Macron: "Nous ne céderons pas"' and got["quote"].outlet == "L'Est"
    assert got["quote"].lang == "fr" and got["quote"].extra == {"tags": "politique, retraites"}
    assert got["folded"].title == "Ferry cancelled by fog"
    assert got["bare"].title == "Bare title"
    assert [(p.path.name, p.message) for p in problems] == [("notepad.txt", "the file is UTF-16 text; save it as UTF-8")]
