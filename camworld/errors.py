"""The one error type that the command line turns into a one-line message and exit code 2."""


class UserError(ValueError):
    """Bad input from a user (a file, a flag, an action string): the message names the problem in one line."""
