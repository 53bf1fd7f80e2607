"""OVCT controller: pure logic modules plus a thin os-ken shim (app.py)."""
