"""Errors raised by the engine.

Every error's ``str()`` is one clear English sentence meant for users; ``code`` is a stable
identifier the platform uses to translate or classify it.
"""


class LipsyncError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "lipsync_error"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)

    default_message = "Lip-sync failed."


class BadInputError(LipsyncError):
    """The user's file is the problem: retrying will not help."""

    code = "bad_input"
    default_message = "The input file cannot be used."


class UndecodableMediaError(BadInputError):
    """Not a media file, corrupt, truncated, or missing the needed stream."""

    code = "undecodable_media"
    default_message = "The file could not be decoded as audio or video."


class NoFaceError(BadInputError):
    """No face was found in any frame of the template."""

    code = "no_face"
    default_message = "No face was found in any frame of the video."


class SilentAudioError(BadInputError):
    """The audio is empty or silent."""

    code = "silent_audio"
    default_message = "The audio is empty or silent."


class RenderCancelled(LipsyncError):
    """The ``cancelled()`` callable returned True."""

    code = "cancelled"
    default_message = "The render was cancelled."


class MissingComponentError(LipsyncError):
    """A package, model file or device the engine needs is not installed or not usable.
    The message names it; nothing falls back silently to worse output."""

    code = "missing_component"
    default_message = "A component the lip-sync engine needs is missing."
