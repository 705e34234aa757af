"""The package itself: standard library only, and its public names."""

import subprocess
import sys
from pathlib import Path

import sf_contract

REPO = Path(__file__).resolve().parents[2]

# -I: no PYTHONPATH, no user site; -S: no site-packages at all, so a third-party import fails
# outright instead of merely showing up in sys.modules.
PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
import sf_contract, sf_contract.constants, sf_contract.files, sf_contract.scalars
import sf_contract.schema
print("\\n".join(sorted(set(sys.modules) - before)))
"""


def test_sf_contract_imports_only_the_standard_library():
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(REPO)],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = proc.stdout.split()
    assert "sf_contract.schema" in imported  # the probe did import the package
    top_level = {name.partition(".")[0] for name in imported}
    outside = sorted(top_level - set(sys.stdlib_module_names) - {"sf_contract"})
    assert outside == [], f"sf_contract imports non-stdlib modules: {outside}"


def test_the_package_re_exports_what_it_lists():
    from sf_contract import constants, scalars, schema

    for name in sf_contract.__all__:
        source = next(m for m in (constants, scalars, schema) if name in m.__all__)
        assert getattr(sf_contract, name) is getattr(source, name), name
    assert sf_contract.parse_contract is sf_contract.schema.parse_contract
    assert sf_contract.parse_scalar is sf_contract.scalars.parse_scalar
