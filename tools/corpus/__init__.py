"""The pieces of tools/xla_corpus.py: statetensor against XLA:CPU on the HLO modules of
XLA's own tests (see that script's docstring for the whole procedure).

extract   modules out of an XLA git directory
shapes    XLA's printed signatures, array leaves, random inputs
compare   tolerances and the leaf-by-leaf comparison
xla       the XLA:CPU worker process (jaxlib) and the rewrites it needs
run       one module through both engines; the report entries
keep      a sample of matching modules kept as fixtures with XLA's outputs
report    the printed summary of a report
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
# the extracted corpus and reports live under target/ (not committed)
HERE = REPO / "target" / "xla_corpus"
DEFAULT_MODULES = HERE / "modules"
DEFAULT_REPORT = HERE / "report.json"
DEFAULT_BIN = Path(os.environ.get("STATETENSOR_BIN", REPO / "target/release/statetensor"))
DEFAULT_KEEP = REPO / "conformance" / "fixtures" / "xla_corpus"
