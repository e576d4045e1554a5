"""Decode: stimulus -> simulated (or real) fMRI -> ridge decoding -> reconstruction with the image model, and the
evaluation metrics of the published reconstruction papers. Qt-free; the Decode room, the host and the CLI drive
:class:`engines.decode.engine.DecodeEngine`."""
