"""Names given by users (on the command line) for files and folders inside a target folder."""

import pathlib


def child_path(folder, name, argument="name"):
    """`folder / name`, for a `name` that cannot leave `folder`.

    Args:
        folder: The target folder.
        name: A single path component chosen by a user, such as a model or
            run name.
        argument: The argument's name, for the error message.

    Returns:
        The `pathlib.Path` of `name` inside `folder`.

    Raises:
        ValueError: `name` is empty, absolute, `.` or `..`, holds a path
            separator or a NUL character, or resolves outside `folder`.
    """
    text = name if isinstance(name, str) else None
    if (
        not text
        or text.strip() != text
        or text in (".", "..")
        or any(character in text for character in ("/", "\\", "\0"))
        or pathlib.PurePath(text).is_absolute()
    ):
        raise ValueError(
            f"Expected `{argument}` to be a plain file or folder name (no path separators, "
            f"not empty, '.' or '..'). Received: {argument}={name!r}"
        )
    folder = pathlib.Path(folder)
    path = folder / text
    if path.resolve().parent != folder.resolve():
        raise ValueError(
            f"Expected `{argument}` to name an entry of {folder}. Received: {argument}={name!r} "
            f"(resolves to {path.resolve()})"
        )
    return path
