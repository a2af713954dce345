#!/usr/bin/env python3
"""A structural check of infra/docker/Dockerfile, beside hadolint (no Docker
engine runs on the project's machines, so the image is never built here).

It checks what hadolint cannot know about this project:
- the stages: a Debian-based Rust build stage, the model fetched by
  scripts/fetch-model.sh in its own stage, the clients built with their npm
  scripts, and a debian-slim runtime;
- the build steps are the ones `make` runs (the same script and npm scripts,
  named in the Makefile too);
- every path COPY takes from the build context exists in the repository and
  is not excluded by .dockerignore;
- the runtime: a non-root USER, an exec-form ENTRYPOINT through tini, and the
  role as the command.

Usage: dockerfile.py REPO_ROOT
"""

import fnmatch
import re
import shlex
import sys
from pathlib import Path


def instructions(text: str):
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    logical, out = "", []
    for line in text.splitlines():
        s = line.strip()
        if not logical and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue  # a comment inside a continued RUN
        if s.endswith("\\"):
            logical += s[:-1] + " "
            continue
        logical += s
        word, _, rest = logical.partition(" ")
        out.append((word.upper(), rest.strip()))
        logical = ""
    return out


def ignored(path: str, patterns) -> bool:
    hit = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.rstrip("/")
        candidates = [path] + [str(Path(*Path(path).parts[:i])) for i in range(1, len(Path(path).parts))]
        for c in candidates:
            if fnmatch.fnmatch(c, pat) or (pat.startswith("**/") and (fnmatch.fnmatch(c, pat[3:]) or fnmatch.fnmatch(c, pat))):
                hit = not neg
    return hit


def main(root: Path) -> int:
    dockerfile = root / "infra/docker/Dockerfile"
    ins = instructions(dockerfile.read_text(encoding="utf-8"))
    ignore = [l.strip() for l in (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
              if l.strip() and not l.strip().startswith("#")]
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    errors = []

    args = {}
    stages = []  # [name, base image, [(INSTR, args)]]
    for word, rest in ins:
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        elif word == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            image = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), a.group(0)), m.group(1))
            stages.append([m.group(2) or str(len(stages)), image, []])
        elif stages:
            stages[-1][2].append((word, rest))
    names = [s[0] for s in stages]
    print(f"dockerfile: {len(stages)} stages: " + ", ".join(f"{n} ({img})" for n, img, _ in stages))

    def stage(name):
        return next((s for s in stages if s[0] == name), None)

    def runs(s):
        return " ; ".join(r for w, r in s[2] if w == "RUN")

    for name in ("model", "clients", "build", "runtime"):
        if not stage(name):
            errors.append(f"no stage named {name!r} (stages: {names})")
    if stages and stages[-1][0] != "runtime":
        errors.append("the last stage (the image) is not 'runtime'")
    if errors:
        return report(errors)

    if not re.match(r"rust:[\d.]+-(bookworm|trixie)$", stage("build")[1]):
        errors.append(f"the build stage is not a Debian-based rust image: {stage('build')[1]}")
    if not re.match(r"debian:(bookworm|trixie)-slim$", stage("runtime")[1]):
        errors.append(f"the runtime is not debian-slim: {stage('runtime')[1]}")
    if stage("build")[1].split("-")[-1] != stage("runtime")[1].split(":")[1].split("-")[0]:
        errors.append("the build and runtime stages are on different Debian releases (glibc)")

    # The same steps as make.
    steps = {
        "model": ("scripts/fetch-model.sh", "make model: scripts/fetch-model.sh"),
        "clients": ("npm run build", "make clients: npm run build"),
        "build": ("cargo build --release", "make release: cargo build --release -p jamuna"),
    }
    for name, (needle, what) in steps.items():
        if needle not in runs(stage(name)):
            errors.append(f"stage {name} does not run {needle!r} ({what})")
        if needle not in makefile:
            errors.append(f"the Makefile no longer runs {needle!r}: the Dockerfile and make have drifted")
    if "npm ci" not in runs(stage("clients")):
        errors.append("stage clients does not install with `npm ci` (the lockfile)")
    else:
        # `npm ci` runs before the sources are copied (for the layer cache), so
        # it sees only the manifests copied before it: each workspace's must be.
        import json
        workspaces = json.loads((root / "clients/package.json").read_text(encoding="utf-8")).get("workspaces", [])
        before = []
        for word, rest in stage("clients")[2]:
            if word == "RUN" and "npm ci" in rest:
                break
            if word == "COPY":
                before += shlex.split(rest)
        for ws in workspaces:
            if f"clients/{ws}/package.json" not in before:
                errors.append(f"stage clients: the workspace {ws}'s package.json is not copied before `npm ci`")
        print(f"dockerfile: npm workspaces {', '.join(workspaces)}: manifests copied before npm ci")
    if "--locked" not in runs(stage("build")) or "-p jamuna" not in runs(stage("build")):
        errors.append("stage build does not run `cargo build --release --locked -p jamuna`")

    # COPY sources exist and are in the context.
    copied = 0
    for name, _, body in stages:
        for word, rest in body:
            if word not in ("COPY", "ADD"):
                continue
            parts = shlex.split(rest)
            if any(p.startswith("--from=") for p in parts):
                src_stage = next(p for p in parts if p.startswith("--from="))[7:]
                if src_stage not in names[: names.index(name)]:
                    errors.append(f"stage {name}: COPY --from={src_stage}, which is not an earlier stage")
                continue
            for src in [p for p in parts if not p.startswith("--")][:-1]:
                copied += 1
                rel = src.rstrip("/")
                if not (root / rel).exists():
                    errors.append(f"stage {name}: COPY {src}: no such path in the repository")
                elif ignored(rel, ignore):
                    errors.append(f"stage {name}: COPY {src}: excluded by .dockerignore")
    for must in ("target", "node_modules", "models", ".git", "clients/dist", "data"):
        if not ignored(must, ignore) and not ignored(f"x/{must}", ignore):
            errors.append(f".dockerignore does not exclude {must}")

    rt = dict()
    for word, rest in stage("runtime")[2]:
        rt[word] = rest  # the last one wins, as in Docker
    user = rt.get("USER", "")
    if not user or user.split(":")[0] in ("0", "root"):
        errors.append(f"the runtime runs as root (USER {user!r})")
    entry = rt.get("ENTRYPOINT", "")
    if not entry.startswith("["):
        errors.append("ENTRYPOINT is not in exec form (signals would go to a shell)")
    elif "tini" not in entry or "jamuna" not in entry:
        errors.append(f"ENTRYPOINT {entry} does not run jamuna under tini")
    if "tini" not in runs(stage("runtime")):
        errors.append("the runtime does not install tini")
    if not rt.get("CMD", "").startswith("["):
        errors.append("CMD (the role) is not in exec form")
    for env in ("JAMUNA_MODEL_DIR", "JAMUNA_STATIC_DIR", "JAMUNA_LISTEN", "JAMUNA_DATA_DIR"):
        if env not in rt.get("ENV", ""):
            errors.append(f"the runtime does not set {env}")

    print(f"dockerfile: {copied} COPY sources exist and are in the build context; "
          f"runtime user {user}, entrypoint {entry}, default command {rt.get('CMD')}")
    return report(errors)


def report(errors):
    for e in errors:
        print(f"  ERROR {e}")
    if errors:
        print(f"dockerfile: FAILED ({len(errors)} errors)")
        return 1
    print("dockerfile: ok (stages, same build steps as make, build context, non-root, tini)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
