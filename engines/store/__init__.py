"""What Hearth keeps on disk and both processes read: training run folders (``runs``).

Stdlib only (plus engines.core): the desktop may import it, and reads run folders itself.
"""
