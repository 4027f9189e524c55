"""deploy/docker/Dockerfile read as Docker reads it: instructions with their arguments, by build stage."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

DOCKER = Path(__file__).resolve().parents[2] / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
IMAGE_CONFIG = DOCKER / "costspan.yaml"


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY ...
    arguments: str  # the rest of the line, continuation lines joined

    def words(self) -> list[str]:
        """The arguments in exec form (a JSON array) or shell words."""
        if self.arguments.lstrip().startswith("["):
            return json.loads(self.arguments)
        return shlex.split(self.arguments)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def instructions(text: str) -> list[Instruction]:
    """Comments and parser directives dropped, lines ending in a backslash joined to the next."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    found = []
    for line in joined:
        keyword, _, arguments = line.strip().partition(" ")
        found.append(Instruction(keyword.upper(), re.sub(r"\s+", " ", arguments).strip()))
    return found


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARGs (before the first FROM) with their defaults, and the build stages in order."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(base=words[0], name=name))
        elif not found:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            key, _, default = instruction.arguments.partition("=")
            args[key] = default
        else:
            found[-1].instructions.append(instruction)
    return args, found


def image(base: str, args: dict[str, str]) -> str:
    """A FROM's image with the global ARGs' defaults put in (``${PYTHON_IMAGE}``)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], base)
