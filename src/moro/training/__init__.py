"""Training: stages, trainer wiring, schedules.

- :mod:`.checkpoint`      resumable, atomic training checkpoints (any stage) + provenance
- :mod:`.schedules`       AdamW and the LR schedules of design.md (step decay, warm-up + cosine)
- :mod:`.mesh_source`     local body meshes from the motion generator, a pure function of (seed, step)
- :mod:`.tokenizer`       the Mesh-VQ-VAE stage (``moro train tokenizer``)
- :mod:`.tokenizer_eval`  held-out scoring of a tokenizer (``moro eval tokenizer``)

Modules are imported on use (``from moro.training.tokenizer import train_tokenizer``) so that
importing the package stays cheap.
"""
