"""Training SSERD (the paper's stage 1, paired data, stage 2) on MEAD, RAVDESS or your own actors.

- :mod:`.data` — dataset layouts (MEAD, RAVDESS, plain ``actor/emotion/clip.mp4``), actor splits,
  and the preprocessed-cache dataset the trainer samples from.
- :mod:`.preprocess` — ``sserd preprocess``: detection, 68 landmarks, SSERD alignment, face masks,
  crops into a resumable cache, parallel over clips.
- :mod:`.losses` — InfoNCE over a per-actor / per-emotion latent memory pool, reconstruction
  losses (identity, L2, perceptual, adversarial) with user-given loss networks.
- :mod:`.paired` — per-actor linear-SVM emotion directions and pseudo-paired data.
- :mod:`.trainer` — the accelerate training loop for both stages (``sserd train --config``).
- :mod:`.cli` — ``register(subparsers)`` adding ``preprocess``, ``pairs`` and ``train``.
"""
