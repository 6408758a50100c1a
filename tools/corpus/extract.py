"""Every HLO module in an XLA git directory: `.hlo` files split at lit's separators and
C++ raw-string literals that contain an ENTRY computation; identical texts written once."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path


#: C++ raw string literal: R"delim( ... )delim"
RAW_STRING = re.compile(r'R"([A-Za-z0-9_]{0,16})\((.*?)\)\1"', re.S)
#: Raw-string delimiters that never hold HLO text.
NON_HLO_DELIMS = {"pb", "mlir", "json", "html", "proto", "cc", "py"}
#: lit's split-input-file separator in .hlo tests.
LIT_SPLIT = re.compile(r"^//\s*-{5,}.*$", re.M)
SOURCE_EXTS = (".hlo", ".cc", ".h")


def sanitize(path: str) -> str:
    """A source path as one file-name component: 'xla/a/b_test.cc' -> 'xla__a__b_test.cc'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.replace("/", "__"))


def looks_like_hlo(text: str) -> bool:
    """A module or a computation list: has an ENTRY computation (or an HloModule header)."""
    return bool(re.search(r"(^|\s)ENTRY\s", text)) or text.lstrip().startswith("HloModule")


def modules_in(path: str, data: str):
    """Yield (line, text) for every HLO module in a source file's text."""
    if path.endswith(".hlo"):
        pos = 0
        for part in LIT_SPLIT.split(data):
            line = data.count("\n", 0, data.find(part, pos)) + 1 if part else 1
            pos += len(part)
            if looks_like_hlo(part):
                yield line, part.strip() + "\n"
        return
    for m in RAW_STRING.finditer(data):
        if m.group(1).lower() in NON_HLO_DELIMS:
            continue
        body = m.group(2)
        if looks_like_hlo(body):
            yield data.count("\n", 0, m.start()) + 1, body.strip() + "\n"


def git_blobs(git_dir: str, rev: str, paths: list[str]):
    """Yield (path, text) for each path at rev, read through one `git cat-file --batch`."""
    proc = subprocess.Popen(["git", "-C", git_dir, "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for p in paths:
        proc.stdin.write(f"{rev}:{p}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # trailing newline
        yield p, data.decode("utf-8", "replace")
    proc.stdin.close()
    proc.wait()


def cmd_extract(args) -> None:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    listing = subprocess.run(["git", "-C", args.xla_git, "ls-tree", "-r", "--name-only", args.rev],
                             check=True, capture_output=True, text=True).stdout.split("\n")
    paths = [p for p in listing if p.startswith("xla/") and p.endswith(SOURCE_EXTS)]
    commit = subprocess.run(["git", "-C", args.xla_git, "rev-parse", args.rev],
                            check=True, capture_output=True, text=True).stdout.strip()
    seen: dict[str, str] = {}
    index = {}
    dupes = files_with = 0
    for path, data in git_blobs(args.xla_git, args.rev, paths):
        if path.endswith((".cc", ".h")) and "ENTRY" not in data:
            continue
        n = 0
        for line, text in modules_in(path, data):
            if text in seen:
                dupes += 1
                continue
            name = f"{sanitize(path)}__{n}.hlo"
            n += 1
            seen[text] = name
            (out / name).write_text(text)
            index[name] = {"source": path, "ordinal": n - 1, "line": line}
        files_with += n > 0
    (out / "index.json").write_text(json.dumps({"xla_commit": commit, "modules": index}, indent=1))
    print(f"{len(index)} modules from {files_with} files ({dupes} duplicates skipped) "
          f"of {len(paths)} scanned at {commit[:12]} -> {out}")
