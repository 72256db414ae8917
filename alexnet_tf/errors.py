"""The user's mistakes, reported as one line instead of a traceback."""


class UserError(Exception):
    """A bad flag, path or file the user can fix.

    The message is one line that names the flag or path and the value, e.g.
    `--data_dir /x has no class folders under train/`. Entry points print it to
    stderr and exit with status 2; library code raises it before any heavy work.
    """
