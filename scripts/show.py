"""Pretty-prints grid-gateway's JSON output for scripts/dev-node.sh.

usage: show.py check   < output of `grid-gateway policy check`
       show.py run     < output of `grid-gateway policy run` on a directory
"""
import json
import sys


def check(report):
    print("  {:<14} {:<28} sha256 {}…  settings {}".format(
        report["world"], report["name"], report["sha256"][:16], report["settings"]))


def outcome_line(o):
    if "price" in o:
        refusal = o["refusal"]
        verdict = "acceptable" if refusal is None else "{}: {}".format(refusal["kind"], refusal["reason"])
        return "price {:>9}  {}".format(o["price"], verdict)
    if o["decision"] == "grant":
        return "grant until {} scopes {}".format(o["expires_at"], o["scopes"])
    if o["decision"] == "deny":
        return "deny: " + o["reason"]
    return o["decision"]


def run(results):
    for r in results:
        name = r["fixture"].rsplit("/", 1)[-1]
        mark = "ok " if r["expect_matched"] else "BAD"
        print("  [{}] {:<40} {}".format(mark, name, outcome_line(r["outcome"])))


if __name__ == "__main__":
    data = json.load(sys.stdin)
    {"check": check, "run": run}[sys.argv[1]](data)
