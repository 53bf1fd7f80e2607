"""OVCT testbed: a live SDN emulation of the OVCT thin-client method.

System packages (Open vSwitch, Mininet, QEMU, libvirt ...) are installed by
``scripts/setup.sh``, never from here.  Mininet itself comes from Debian, so the
venv is created with ``--system-site-packages`` (see scripts/setup.sh).
"""
from setuptools import find_packages, setup

setup(
    name="ovct-testbed",
    version="0.1.0",
    description="Reproduce and extend the OVCT thin-client/VM migration method "
                "on Mininet + Open vSwitch + os-ken + libvirt",
    python_requires=">=3.10",
    packages=find_packages(include=["testbed", "testbed.*",
                                    "controller", "controller.*"]),
    install_requires=[
        "os-ken>=4.2,<5",
        "networkx>=3.0",
        "pandas>=2.0",
        "matplotlib>=3.7",
        "pydantic>=2.5,<3",
        "PyYAML>=6.0",
        "pingparsing>=1.4",
        "psutil>=5.9",             # processes: teardown checks, cleanup verified from outside
        "vncdotool>=1.2",
        # twisted (under vncdotool) imports these; the venv sees Debian's
        # older pyOpenSSL otherwise, which breaks with PyPI's cryptography
        "service_identity>=21.1",
        "pyOpenSSL>=24.0",
        # `ovct notebook` opens the results notebook in JupyterLab
        "jupyterlab>=4.0",
        "ipykernel>=6.25",
    ],
    extras_require={
        # the notebook runs headless in the tests (nbclient + ipykernel);
        # unit tests in random order, property-based tests, coverage of the
        # pure core, and mutation testing (scripts/mutation.sh)
        "test": ["pytest>=7.4", "nbformat>=5.9", "nbclient>=0.9", "ipykernel>=6.25",
                 "hypothesis>=6.100", "pytest-randomly>=3.15", "pytest-cov>=5.0",
                 "mutmut>=3.2,<4"],
    },
    entry_points={
        "console_scripts": ["ovct = testbed.cli:run"],
    },
)
