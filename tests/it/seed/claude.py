#!/usr/bin/env python3
"""A stand-in for the Claude Code CLI, answering as `claude -p PROMPT --output-format json` does.

It reviews by quoting the diff lines it was given (lines starting with `+`), keeps a session id
(new, or the one given with `--resume`), and when the prompt asks to fix something it edits
`login.txt` in its working directory (the workspace) as an agent would. Every call's arguments
are appended to `calls.jsonl` beside this script so tests can check them.
"""
import json
import os
import sys
import uuid

args = sys.argv[1:]
prompt, resume, model = None, None, None
i = 0
while i < len(args):
    if args[i] == "-p" and i + 1 < len(args) and not args[i + 1].startswith("--"):
        prompt = args[i + 1]
        i += 2
    elif args[i] == "--resume":
        resume = args[i + 1]
        i += 2
    elif args[i] == "--model":
        model = args[i + 1]
        i += 2
    else:
        i += 1
if prompt is None:
    prompt = sys.stdin.read()

here = os.path.dirname(os.path.abspath(__file__))
try:
    with open(os.path.join(here, "calls.jsonl"), "a") as log:
        log.write(json.dumps({"args": args, "prompt": prompt, "cwd": os.getcwd()}) + "\n")
except OSError:
    pass  # confined to a sandbox where its folder is read-only: nothing to record


session = resume or str(uuid.uuid4())
if "Please fix" in prompt:
    count = 1
    if os.path.exists("login.txt"):
        count = len(open("login.txt").read().splitlines()) + 1
    with open("login.txt", "a") as f:
        f.write("fixed %d %s\n" % (count, uuid.uuid4()))
    result = "Fixed the login form (%s)." % ("resumed" if resume else "new session")
else:
    added = [l for l in prompt.splitlines() if l.startswith("+") and not l.startswith("+++")]
    result = "Looks good. %s. I read: %s" % ("Resumed" if resume else "First look", " | ".join(added))

print(json.dumps({
    "type": "result", "subtype": "success", "is_error": False, "duration_ms": 12,
    "num_turns": 1, "result": result, "session_id": session, "total_cost_usd": 0.0123,
    "usage": {"input_tokens": len(prompt) // 4, "output_tokens": len(result) // 4},
}))
