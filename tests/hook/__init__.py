"""Tests of the hook package (``client_hook/``, imported as ``fitscope``)."""
