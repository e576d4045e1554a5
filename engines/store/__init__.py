"""What Hearth keeps on disk, read and written by both processes: the SQLite database (``storage``) and
its stores (conversations, settings, gallery, labels, usage), training run folders (``runs``) and a decoding
run's result files (``decode_results``).

Stdlib only (plus engines.core): the desktop reads the database itself (history, settings, the gallery
and labels must work while the engine host is still starting) and lists run folders on a file thread.
"""
