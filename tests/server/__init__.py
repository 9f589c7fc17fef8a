"""Tests of the server package (``server/``, imported as ``fitscope_server``)."""
