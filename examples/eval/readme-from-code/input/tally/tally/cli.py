"""tally: count words and lines."""
import argparse

from tally import store


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tally")
    parser.add_argument("paths", nargs="+", help="files to count")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--save", action="store_true", help="keep the counts in the history database")
    args = parser.parse_args(argv)
    counts = {p: count(p) for p in args.paths}
    if args.save:
        store.save(counts)
    print(render(counts, args.format))


def count(path):
    text = open(path, encoding="utf-8").read()
    return {"lines": text.count("\n"), "words": len(text.split())}


def render(counts, fmt):
    if fmt == "json":
        import json
        return json.dumps(counts)
    return "\n".join(f"{p}: {c['lines']} lines, {c['words']} words" for p, c in counts.items())
