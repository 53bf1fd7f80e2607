"""OVCT testbed: topologies, network bring-up and measurement helpers."""
import os

#: repository root (testbed/..)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
