"""fitscope's test suite; its folders mirror the code (see conftest.py)."""
