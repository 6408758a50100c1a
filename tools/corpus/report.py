"""The printed summary of a report: counts by status, refusals grouped by message, and
every finding listed."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path


def refusal_key(msg: str) -> str:
    """Group refusal messages: drop file:line:col, instruction names, numbers; first ~60 chars."""
    m = re.sub(r"^statetensor:\s*", "", msg)
    m = re.sub(r"\S+\.hlo(:\d+)*:?\s*", "", m)
    m = re.sub(r"\bline \d+(:\d+)?:?\s*", "", m)
    m = re.sub(r"^[\w.%-]+ in [\w.%-]+:\s*", "", m)  # "<instr> in <computation>: "
    parts = re.split(r"('[^']*')", m)  # quoted names (opcodes, types) are kept as written
    m = "".join(p if p.startswith("'") else re.sub(r"\d+", "N", p) for p in parts)
    return m[:60]


def print_summary(meta: dict, entries: list[dict]) -> None:
    counts = collections.Counter(e["status"] for e in entries)
    parsed = [e for e in entries if e["status"] != "xla_rejects"]
    print(f"\n== {len(entries)} modules sampled of {meta.get('corpus_size')} "
          f"(seed {meta.get('seed')}, timeout {meta.get('timeout')} s, {meta.get('seconds')} s total)")
    print(f"   XLA's parser accepts {len(parsed)}; rejects {counts['xla_rejects']} (negative tests, templates)")
    order = ["match", "near_miss", "mismatch", "xla_unreliable", "st_error", "st_crash", "st_timeout",
             "both_timeout", "infinite_loop", "xla_error", "too_big",
             "signature_differs",
             "refuse", "inspect_error", "crash", "timeout", "xla_rejects"]
    print("\n status              count   % of XLA-parsed")
    for s in order + sorted(set(counts) - set(order)):
        if counts[s]:
            pct = "" if s == "xla_rejects" else f"{100 * counts[s] / max(1, len(parsed)):6.1f}"
            print(f"  {s:<18} {counts[s]:5d}   {pct}")
    accepted = len(parsed) - counts["refuse"] - counts["crash"] - counts["timeout"] - counts["inspect_error"]
    print(f"\n  inspect accepts {accepted}/{len(parsed)} = {100 * accepted / max(1, len(parsed)):.1f}%;"
          f" of those run and compared: {counts['match']} match, {counts['near_miss']} near miss,"
          f" {counts['mismatch']} mismatch")

    refusals = collections.Counter(refusal_key(e["message"]) for e in entries if e["status"] == "refuse")
    print(f"\n top refusals ({sum(refusals.values())} refused, {len(refusals)} kinds)")
    for msg, n in refusals.most_common(30):
        print(f"  {n:5d}  {msg}")

    def listing(title, statuses):
        rows = [e for e in entries if e["status"] in statuses]
        if rows:
            print(f"\n {title} ({len(rows)})")
            for e in rows:
                print(f"  [{e['status']}] {e['source']}  ({e['module']})\n      {e.get('message', '')}")

    listing("crashes and timeouts", {"crash", "timeout", "st_crash", "st_timeout"})
    listing("timeouts where XLA:CPU hangs too, or a while condition is constant(true)",
            {"both_timeout", "infinite_loop"})
    listing("not compared: XLA's answer through StableHLO is not XLA's semantics", {"xla_unreliable"})
    for status, title in (("mismatch", "mismatches"),
                          ("near_miss", "near misses (outside rtol/atol, within NEAR_MISS of the output's scale)")):
        rows = [e for e in entries if e["status"] == status]
        if rows:
            print(f"\n {title} ({len(rows)})")
            for e in rows:
                print(f"  {e['source']}  ({e['module']})")
                for m in e["mismatches"][:4]:
                    print(f"      output {m['output']} {m.get('dtype', '')}: {m['error']}")
    listing("statetensor run errors", {"st_error", "inspect_error", "signature_differs"})
    xe = collections.Counter(e["message"][:90] for e in entries if e["status"] == "xla_error")
    if xe:
        print(f"\n XLA errors ({sum(xe.values())})")
        for msg, n in xe.most_common(10):
            print(f"  {n:5d}  {msg}")


def cmd_summary(args) -> None:
    rep = json.loads(Path(args.report).read_text())
    print_summary(rep["meta"], rep["modules"])
