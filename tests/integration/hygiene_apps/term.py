"""A child for the terminal tests: term.py MODE [MODE...], one mode per generation (the last
one repeats). Writes its pid to ./term-<generation>.pid first.

  input  ask "name? " and answer "hello NAME!", for ever
  pdb    stop in breakpoint() with x = 40; after `c`, print "after pdb x=..." and wait
  int0   on SIGINT exit with status 0 (a server that handles Ctrl+C); print "waiting"
  deaf   ignore SIGINT (a server that does not stop on Ctrl+C); print "waiting"
"""

import os
import signal
import sys

generation = int(os.environ.get("RELOADKIT_GENERATION", "0"))
modes = sys.argv[1:]
mode = modes[min(generation, len(modes) - 1)]
with open(f"term-{generation}.pid.tmp", "w") as handle:
    handle.write(str(os.getpid()))
os.replace(f"term-{generation}.pid.tmp", f"term-{generation}.pid")

if mode == "input":
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C ends it like a server, without a traceback
    while True:
        name = input("name? ")
        print(f"hello {name}!", flush=True)
elif mode == "pdb":
    x = 40
    breakpoint()
    print(f"after pdb x={x}", flush=True)
    while True:
        signal.pause()
elif mode in ("int0", "deaf"):
    signal.signal(signal.SIGINT, (lambda *_: os._exit(0)) if mode == "int0" else signal.SIG_IGN)
    print("waiting", flush=True)
    while True:
        signal.pause()
else:
    sys.exit(f"term.py: unknown mode {mode!r}")
