"""CLI: the `dbstack` command line (validate, plan, deploy, teardown, report, preview-comment).

May import every other package; nothing imports it but `dbstack.__main__`.
"""
