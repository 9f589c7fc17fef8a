"""One-line integrations with training frameworks.

- PyTorch Lightning: ``Trainer(callbacks=[fitscope.integrations.lightning.FitscopeCallback()])``
- Hugging Face: ``Trainer(..., callbacks=[fitscope.integrations.huggingface.FitscopeCallback()])``

Each module imports its framework only when it is imported itself; this
package imports nothing.
"""
