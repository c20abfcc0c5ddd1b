"""Load a script of ``simulations/`` as a module (the study scripts are not part of the package)."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """Import ``simulations/<name>.py`` under the module name ``_leap_sim_<name>``."""
    spec = importlib.util.spec_from_file_location(f"_leap_sim_{name}", ROOT / "simulations" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod
