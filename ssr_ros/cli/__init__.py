"""The ``ssr`` command line."""
