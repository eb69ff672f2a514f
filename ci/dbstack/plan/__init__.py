"""Plan: a Config turned into pure data, with no I/O.

Owns the steps, their commands, waits, watches and diagnostics, the endpoints the smoke suite reaches, and the
plan's documented JSON form. May import `config` and the shared helpers.
"""
