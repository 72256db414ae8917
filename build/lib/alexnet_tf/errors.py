"""The user's mistakes, reported as one line instead of a traceback."""


class UserError(Exception):
    """A bad flag, path or file the user can fix.

    The message is one line that names the flag or path and the value, e.g.
    `--data_dir /x has no class folders under train/`. Entry points print it to
    stderr and exit with status 2; library code raises it before any heavy work.
    """


class TrainingStopped(Exception):
    """Training cannot go on (a NaN loss, data that ran out, a signal).

    The message is one line; `exit_code` is the process status (cli.EXIT_CODES).
    """

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code
