"""Build hook (everything else is in pyproject.toml): the wheel carries the sample story and
``.env.example`` in ``bot/_data/``, copied at build time from where they live at the top of
the repository, so each keeps one source of truth. ``bot/data.py`` finds them either way."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SUFFIXES = {".txt", ".md"}


def shipped() -> dict[str, Path]:
    """Package-relative target -> source file."""
    files = {"bot/_data/env.example": HERE / ".env.example"}
    for story in sorted((HERE / "stories").iterdir()):
        if story.suffix in SUFFIXES:
            files[f"bot/_data/stories/{story.name}"] = story
    return files


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the files in the source tree
        for target, source in shipped().items():
            dest = Path(self.build_lib) / target
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)

    def get_outputs(self, include_bytecode=True):
        if getattr(self, "editable_mode", False):
            return super().get_outputs(include_bytecode)
        extra = [str(Path(self.build_lib) / t) for t in shipped()]
        return super().get_outputs(include_bytecode) + extra


setup(cmdclass={"build_py": BuildWithData})
