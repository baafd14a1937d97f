"""What each preset of ``pipeline.py`` sets: sizes, widths, steps, and how every arm's labeller is trained.

Usage: ``from landaug.pipeline.presets import PRESETS``; ``PRESETS["cpu"]["labeller"]``.
"""

# Sizes, widths, steps, and how every arm's labeller is trained; every one can be overridden on the command
# line. demo and paper train the paper's labeller; cpu the one chosen on SPARCS validation scenes
# (PAPER_OPTIONS gives the cpu preset the paper's labeller again, as the tables before that choice had it).
PAPER_LABELLER = dict(labeller="pix2pix", loss="ce", lr_schedule="constant", upsample="transpose", tta="none",
                      cgan_lr=2e-4, cgan_beta1=0.5, cgan_dropout=0.5)
# The labeller chosen on SPARCS validation scenes, 2 seeds (experiments/segmenter_sweep.sh, docs/RESULTS.md): the
# U-Net alone on cross-entropy, Adam 1e-3 (beta_1 0.9), no decoder dropout, on tiles of scenes resampled by 0.5,
# validated and tested with flip TTA, 2560 steps (the length stage: 1280 steps were under-trained).
CPU_LABELLER = dict(labeller="unet", loss="ce", lr_schedule="constant", upsample="transpose", tta="flips",
                    cgan_lr=1e-3, cgan_beta1=0.9, cgan_dropout=0.0)
PRESETS = {
    # Synthetic scenes of 64 px, each one window: the six arms within 10 minutes on 2 cores without AVX-512
    # (float32), sized from the run's CPU seconds under that emulation (README, "How long make demo takes").
    "demo": dict(demo_scenes=60, demo_size=64, size=64, data_mode="resize", tile_scale=1.0, cgan_width=0.5,
                 cgan_epochs=40, cgan_batch=8, cgan_steps=240, evaluations=8, gan_width=0.25, gan_steps=500,
                 gan_batch=16, n_generated=60, synth_steps=700, synth_width=0.25, synth_generator="pix2pix",
                 classic_color="off", precision="auto", **PAPER_LABELLER),
    # 128 px tiles of the training scenes resampled by 0.5 (a window sees 256 px of the scene), whole scenes
    # for validation and test; sized for several arms x 3 seeds on the 72 SPARCS scenes on a 2-core CPU.
    # Every arm makes the same steps.
    "cpu": dict(demo_scenes=100, demo_size=256, size=128, data_mode="tile", tile_scale=0.5, cgan_width=0.5,
                cgan_epochs=40, cgan_batch=8, cgan_steps=2560, evaluations=10, gan_width=1.0, gan_steps=1500,
                gan_batch=16, n_generated=200, synth_steps=1500, synth_width=0.5, synth_generator="pix2pix",
                classic_color="off", precision="auto", **CPU_LABELLER),
    # The paper's scale: 256 px scenes, full width, 57 pix2pix epochs, 200 synthetic scenes; for a GPU.
    "paper": dict(demo_scenes=100, demo_size=256, size=256, data_mode="tile", tile_scale=1.0, cgan_width=1.0,
                  cgan_epochs=57, cgan_batch=1, cgan_steps=0, evaluations=0, gan_width=1.0, gan_steps=20000,
                  gan_batch=16, n_generated=200, synth_steps=20000, synth_width=1.0, synth_generator="pix2pix",
                  classic_color="auto", precision="auto", **PAPER_LABELLER),
}
TUNABLE = tuple(PRESETS["demo"])
# The command-line options that give the cpu preset the paper's labeller on native tiles again, at the earlier
# tables' length.
PAPER_OPTIONS = ("--labeller pix2pix --loss ce --lr-schedule constant --upsample transpose --tta none --cgan-lr 2e-4 "
                 "--cgan-beta1 0.5 --cgan-dropout 0.5 --tile-scale 1 --cgan-steps 1280")
