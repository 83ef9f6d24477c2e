"""The upload engine and what feeds it: options, byte sources, progress reporting.

* :mod:`.options` -- :class:`~.options.UploadOptions`, the one typed set of upload options;
* :mod:`.chunks` -- files and byte streams re-cut into numbered chunks;
* :mod:`.engine` -- :class:`~.engine.ChunkedUpload`: create, parallel chunks, resume, finish, cancel;
* :mod:`.progress` -- :class:`~.progress.UploadProgress` and the operator's progress log lines;
* :mod:`.sources` -- what the upload operator's ``source`` argument may be, resolved at run time.
"""
